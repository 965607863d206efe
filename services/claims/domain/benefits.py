"""Per-day allowances and graded sums (seed 002, Beijing 暖·互助): pure functions of a plan and the facts.

No I/O. Amounts are Decimal and rounded only by shared.money.to_fen. The caller checks what this module cannot
see (the member's cover on the day, the stay's medical category against `med_types`, the claim window).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from decimal import Decimal

from shared.money import format_money, to_fen
from shared.rulebook import FixedPlan, GradedPlan, PerDayPlan

__all__ = [
    "ADULT_AGE",
    "DayAssessment",
    "GradedAssessment",
    "Stay",
    "age_on",
    "assess_graded",
    "assess_per_day",
    "assess_per_day_period",
    "stay_days",
    "term_covers",
    "term_of",
]

ZERO = Decimal("0.00")
# seed 002 子女意外伤害互助保障计划: the child is a minor; PRC Civil Code 第十七条: 十八周岁以上的自然人为成年人.
ADULT_AGE = 18


@dataclass(frozen=True)
class Stay:
    claim_id: str
    admission: dt.date
    discharge: dt.date
    cover_from: dt.date | None = None  # the member's cover in the period began then (see stay_days)


@dataclass(frozen=True)
class DayAssessment:
    aid_amount: Decimal
    days: int  # days of the stay that count: (discharge - admission) - deductible_days, never below 0
    paid_days: int  # of those, the days paid within max_days_per_period
    period_paid_days: int  # the member's paid days in the period including this stay
    explanation: str


@dataclass(frozen=True)
class GradedAssessment:
    aid_amount: Decimal
    period_total: Decimal
    refusal: str | None  # a code for programs when nothing is due for a reason the claim can fix or must know
    explanation: str


def stay_days(plan: PerDayPlan, admission: dt.date, discharge: dt.date, cover_from: dt.date | None = None) -> int:
    """Days of one stay that count (seed 002 住院津贴): discharge - admission, minus the plan's deductible days
    (the stay's first days, rulebooks/beijing-2014.yaml), and only the days inside the member's cover: seed 002
    says nothing of a stay begun before the cover, so seed 003 第十二条（一） applies ("在互助期外发生的住院医疗费用"
    不予补助): a day before `cover_from` is not paid. Counted from the later of admission + deductible days and
    `cover_from`."""
    if discharge < admission:
        raise ValueError(f"discharge {discharge} is before admission {admission}")
    start = admission + dt.timedelta(days=plan.deductible_days)
    if cover_from is not None and cover_from > start:
        start = cover_from
    return max((discharge - start).days, 0)


def assess_per_day(plan: PerDayPlan, admission: dt.date, discharge: dt.date, prior_paid_days: int = 0,
                   cover_from: dt.date | None = None) -> DayAssessment:
    """One stay's allowance: rate_per_day for each counted day, until the period's paid days reach the cap.

    `prior_paid_days` is the member's paid days from this plan earlier in the period (their live stays only).
    """
    if prior_paid_days < 0:
        raise ValueError(f"prior paid days cannot be negative: {prior_paid_days}")
    days = stay_days(plan, admission, discharge, cover_from)
    paid = days
    notes = [f"住院 {(discharge - admission).days} 天，扣除免赔 {plan.deductible_days} 天"]
    if cover_from is not None and cover_from > admission + dt.timedelta(days=plan.deductible_days):
        notes.append(f"{cover_from.isoformat()} 参互保障开始前的住院日不计（第十二条（一））")
    notes[-1] += f"，计 {days} 天"
    # max_days_per_period: the period's paid days stop at the cap (rulebooks/README.md, beijing-2014.yaml).
    if plan.max_days_per_period is not None:
        room = max(plan.max_days_per_period - prior_paid_days, 0)
        if paid > room:
            paid = room
            notes.append(f"本期最多给付 {plan.max_days_per_period} 天，此前已给付 {prior_paid_days} 天，本次给付 {paid} 天")
    aid = to_fen(plan.rate_per_day * paid)
    notes.append(f"每天 {format_money(plan.rate_per_day)} 元，本次津贴 {format_money(aid)} 元")
    return DayAssessment(aid, days, paid, prior_paid_days + paid, "；".join(notes))


def assess_per_day_period(plan: PerDayPlan, stays: Sequence[Stay]) -> list[DayAssessment]:
    """Every live stay of one member and period, in the order given (first assessment or re-assessment)."""
    out = []
    paid_days = 0
    for stay in stays:
        assessment = assess_per_day(plan, stay.admission, stay.discharge, paid_days, stay.cover_from)
        out.append(assessment)
        paid_days = assessment.period_paid_days
    return out


def age_on(birth: dt.date, day: dt.date) -> int:
    """Whole years of age on `day` (a birthday on 29 February is reached on 1 March in a common year)."""
    years = day.year - birth.year
    if (day.month, day.day) < (birth.month, birth.day):
        years -= 1
    return years


def assess_graded(
    plan: GradedPlan,
    grade: str,
    event_date: dt.date,
    prior_aid_in_period: Decimal = ZERO,
    beneficiary_birth_date: dt.date | None = None,
) -> GradedAssessment:
    """A graded sum (seed 002 意外伤害): the claim names a grade; aid = its amount, within the period cap.

    For `beneficiary: child` the claim names the child, who must be under 18 on the day of the event.
    """
    if prior_aid_in_period < 0:
        raise ValueError(f"prior aid cannot be negative: {prior_aid_in_period}")

    def refused(code: str, reason: str) -> GradedAssessment:
        return GradedAssessment(ZERO, to_fen(prior_aid_in_period), code, f"{reason}，本次补助 0.00 元")

    if plan.beneficiary == "child":
        if beneficiary_birth_date is None:
            raise ValueError(f"plan {plan.code} pays for a child: the claim must give the child's birth date")
        if beneficiary_birth_date > event_date:
            return refused("beneficiary_not_born", "事故发生时子女尚未出生")
        if age_on(beneficiary_birth_date, event_date) >= ADULT_AGE:
            return refused("beneficiary_not_minor", f"{plan.name}只保障未满 {ADULT_AGE} 周岁的子女（事故发生当日）")
    found = next((g for g in plan.grades if g.code == grade), None)
    if found is None:
        known = "、".join(g.code for g in plan.grades)
        return refused("grade_unknown", f"{plan.name}没有等级 {grade}（应为：{known}）")
    aid = found.amount
    notes = [f"{found.label}，给付 {format_money(found.amount)} 元"]
    if plan.max_aid_per_period is not None:
        room = max(plan.max_aid_per_period - prior_aid_in_period, ZERO)
        if aid > room:
            aid = room
            notes.append(f"受本期最高 {format_money(plan.max_aid_per_period)} 元限制")
    aid = to_fen(aid)
    notes.append(f"本次补助 {format_money(aid)} 元")
    return GradedAssessment(aid, to_fen(prior_aid_in_period + aid), None, "；".join(notes))


def term_covers(plan: FixedPlan, paid_period_index: int, claim_period_index: int) -> bool:
    """Whether a fee paid in one period covers a claim in another (periods numbered in the scheme's order).

    once_per: term (seed 002 重大疾病 "三年90元"): one fee covers its period and the next term_periods - 1; the
    plan pays once in all of them, so the caller asks `assess_fixed` with `already_paid_in_period` meaning
    "already paid in this term". once_per: period: the fee covers its own period only.
    """
    length = plan.term_periods if plan.once_per == "term" and plan.term_periods is not None else 1
    return 0 <= claim_period_index - paid_period_index < length


def term_of(order: Sequence[str], joined: Collection[str], length: int, period: str) -> tuple[str, ...]:
    """The periods of the term `period` belongs to, for a member and a `once_per: term` plan (seed 002 重大疾病
    "三年90元": one fee for three years, one payment in them).

    `order` is the scheme's periods in order, `joined` the periods the member was covered under the plan. A term
    begins with the member's first period under the plan and spans it and the next `length - 1` periods of the
    scheme, whether the member renewed in them or not; the first period joined after a term's end begins the
    next term. A period outside `order` is a term of its own.
    """
    if length < 1:
        raise ValueError(f"a term has at least one period: {length}")
    index = {code: i for i, code in enumerate(order)}
    if period not in index:
        return (period,)
    start: int | None = None
    for i in sorted({index[p] for p in joined if p in index} | {index[period]}):
        if start is None or i >= start + length:
            start = i
        if i == index[period]:
            break
    assert start is not None
    return tuple(order[start:start + length])
