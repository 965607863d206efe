"""The aid engine (补助计算): pure functions of a plan from the period's rulebook and the member's history.

Imports only the standard library and shared.money / shared.rulebook. Amounts are Decimal; F (the
cumulative aid function) is rounded to the fen once, by `to_fen`, before differences are taken, so every
claim's aid is exact in fen and a member's stays in one period add up to F of their summed base.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from shared.money import format_money, parse_money, to_fen
from shared.rulebook import BandedPlan, FixedPlan, SecondAidPlan
from shared.vocab import LEVEL_NAME_ZH

__all__ = [
    "Assessment",
    "assess_banded",
    "assess_fixed",
    "assess_second_aid",
    "banded_aid",
    "banded_total",
    "settlement_base",
]

ZERO = Decimal("0.00")


@dataclass(frozen=True)
class Assessment:
    aid_amount: Decimal  # aid for this claim, in fen
    cumulative_base: Decimal  # the member's base in the period including this stay (banded plans)
    period_total: Decimal  # the member's aid from this plan in the period including this claim
    explanation: str  # for the approver and the member, in Chinese


def settlement_base(plan: BandedPlan, settlement: Mapping[str, Decimal]) -> Decimal:
    """The 核定基数 of one settlement: base.from minus every base.minus field, never below 0."""
    # 第七条: the member's own share after every payer, minus fully self-paid items (全自费) (seed 003);
    # in national settlement terms psn_part_amt - fulamt_ownpay_amt (docs/SETTLEMENT.md).
    base = _field(settlement, plan.base.from_)
    for name in plan.base.minus:
        base -= _field(settlement, name)
    return max(base, ZERO)


def _field(settlement: Mapping[str, Decimal], name: str) -> Decimal:
    if name not in settlement:
        raise KeyError(f"settlement has no field {name!r} (named by the rulebook's base)")
    return parse_money(settlement[name], field=name)


def _bands(plan: BandedPlan, cumulative_base: Decimal) -> Decimal:
    if plan.mode == "whole_base":
        # seed 001 "核定基数为2000元（含）~5000元的报销比例…25%，核定基数达5000元（含）以上的…30%": one rate on the
        # whole base, from the highest band whose `from` (inclusive) <= base; the 程军刚 case (aid "将近1000元"
        # on a base of about 5,000 under the old 20%) fits this reading (rulebooks/yuncheng-2024.yaml).
        rate = Decimal(0)
        for band in plan.bands:
            if band.from_ is not None and band.from_ <= cumulative_base:
                rate = band.rate
        return rate * cumulative_base
    # 第八条 分段计算，累加支付 (seed 003): each band pays its rate on the part of the base inside it;
    # `over` exclusive, `upto` inclusive, a band without `upto` is open-ended (rulebooks/README.md).
    total = Decimal(0)
    for band in plan.bands:
        if band.over is None or cumulative_base <= band.over:
            continue
        top = cumulative_base if band.upto is None else min(cumulative_base, band.upto)
        total += band.rate * (top - band.over)
    return total


def banded_total(plan: BandedPlan, cumulative_base: Decimal) -> Decimal:
    """F(B): the aid a member has earned in the period for a cumulative base B, rounded to the fen."""
    if cumulative_base < 0:
        raise ValueError(f"cumulative base cannot be negative: {cumulative_base}")
    earned = _bands(plan, cumulative_base)
    # 第八条 "最低补助标准为100元" (seed 003): the minimum is a floor on F itself, once anything is due,
    # so later stays in the period may get less than the minimum (rulebooks/README.md).
    if earned > 0 and plan.min_aid is not None:
        earned = max(earned, plan.min_aid)
    return to_fen(earned)


def banded_aid(
    plan: BandedPlan,
    prior_base: Decimal,
    stay_base: Decimal,
    prior_aid_in_period: Decimal = ZERO,
    prior_aid_all_periods: Decimal = ZERO,
) -> Decimal:
    """The aid of one stay, without the explanation: the hot path of bulk re-assessment (bench/claims.py).

    Same rule as :func:`assess_banded`: F(prior + stay) - F(prior), within the period and member caps.
    """
    aid = banded_total(plan, prior_base + stay_base) - banded_total(plan, prior_base)
    if plan.max_aid_per_period is not None:
        aid = min(aid, max(plan.max_aid_per_period - prior_aid_in_period, ZERO))
    if plan.max_aid_per_member is not None:
        aid = min(aid, max(plan.max_aid_per_member - prior_aid_all_periods, ZERO))
    return to_fen(max(aid, ZERO))


def assess_banded(
    plan: BandedPlan,
    prior_base: Decimal,
    stay_base: Decimal,
    prior_aid_in_period: Decimal = ZERO,
    prior_aid_all_periods: Decimal = ZERO,
) -> Assessment:
    """Aid for one stay: F(prior + stay) - F(prior), within the period and member caps.

    `prior_base` is the sum of the member's approved bases earlier in the period (stays paid 0 count too);
    `prior_aid_in_period` / `prior_aid_all_periods` what this plan has already paid the member.
    """
    for name, amount in (
        ("prior_base", prior_base),
        ("stay_base", stay_base),
        ("prior_aid_in_period", prior_aid_in_period),
        ("prior_aid_all_periods", prior_aid_all_periods),
    ):
        if amount < 0:
            raise ValueError(f"{name} cannot be negative: {amount}")
    # 第八条: the start point is deducted once a period and the bases accumulate (accumulate: period).
    cumulative_base = prior_base + stay_base
    earned_before = banded_total(plan, prior_base)
    earned_after = banded_total(plan, cumulative_base)
    aid = earned_after - earned_before
    notes = [
        f"累计核定基数 {format_money(cumulative_base)} 元，分段累计补助 {format_money(earned_after)} 元，"
        f"此前累计 {format_money(earned_before)} 元，差额 {format_money(aid)} 元"
    ]
    # max_aid_per_period: one period's total for the member (yuncheng "一个互助期内最高报销限额3万元", seed 001).
    if plan.max_aid_per_period is not None:
        room = max(plan.max_aid_per_period - prior_aid_in_period, ZERO)
        if aid > room:
            aid = room
            notes.append(f"受本期最高补助 {format_money(plan.max_aid_per_period)} 元限制")
    # max_aid_per_member: the member's total across all periods, for a scheme whose text states one (none of ours does).
    if plan.max_aid_per_member is not None:
        room = max(plan.max_aid_per_member - prior_aid_all_periods, ZERO)
        if aid > room:
            aid = room
            notes.append(f"受个人累计最高补助 {format_money(plan.max_aid_per_member)} 元限制")
    aid = to_fen(max(aid, ZERO))
    notes.append(f"本次补助 {format_money(aid)} 元")
    return Assessment(
        aid_amount=aid,
        cumulative_base=to_fen(cumulative_base),
        period_total=to_fen(prior_aid_in_period + aid),
        explanation="；".join(notes),
    )


# ICD-10 codes are written with or without the dot (C50.9 / C509) and in either case.
def _icd10_key(code: str) -> str:
    return code.strip().upper().replace(".", "")


# Settlement records give sex as GB/T 2261.1 codes (gend: 1 male, 2 female); rulebooks say female/male.
_SEXES = {"1": "male", "2": "female", "male": "male", "female": "female", "男": "male", "女": "female"}


def assess_fixed(plan: FixedPlan, icd10: str, sex: str, already_paid_in_period: bool, span: str = "本期"
                 ) -> Assessment:
    """A fixed sum for a listed disease (女性馨康, seed 004): the longest matching ICD-10 prefix decides.

    `already_paid_in_period` means paid in the span the plan pays once in: the period, or with `once_per: term`
    the member's term (the caller finds it, ``benefits.term_of``); `span` names it for the explanation."""

    def nothing(reason: str) -> Assessment:
        return Assessment(ZERO, ZERO, ZERO, f"{reason}，本次补助 0.00 元")

    # eligible.sex: the women's plan pays women only (seed 004).
    wanted = plan.eligible.sex
    if wanted is not None and _SEXES.get(sex.strip().lower()) != wanted:
        return nothing(f"{plan.name}仅限{'女性' if wanted == 'female' else '男性'}")
    # once_per: period - one payment per member and period.
    if already_paid_in_period:
        return nothing(f"{plan.name}{span}已给付")
    code = _icd10_key(icd10)
    best_prefix = ""
    best = None
    for benefit in plan.benefits:
        for prefix in benefit.icd10:
            key = _icd10_key(prefix)
            if code.startswith(key) and len(key) > len(best_prefix):
                best_prefix, best = key, benefit
    if best is None:
        return nothing(f"出院诊断 {icd10} 不在{plan.name}的病种目录内")
    aid = to_fen(best.amount)
    return Assessment(aid, ZERO, aid, f"出院诊断 {icd10} 属于{best.label}，定额给付 {format_money(aid)} 元")


def assess_second_aid(
    plan: SecondAidPlan, remaining: Decimal, years: int, prior_aid_in_period: Decimal = ZERO
) -> Assessment:
    """Second aid (二次补助, seed 000): a share of what the member still owes after every payer and first aid.

    `remaining` is the member's for the whole period (services.claims.domain.second_aid.remaining_for_period).
    Rate: among rows with years_from <= years that cover the remaining (remaining_from inclusive, or
    remaining_over exclusive), the one with the greatest years_from, then the greatest bound; applied to the
    whole remaining amount. max_aid caps the member's second aid in the period: `prior_aid_in_period` is what
    earlier second-aid claims of the same member and period were paid.
    """
    if remaining < 0 or years < 0 or prior_aid_in_period < 0:
        raise ValueError("remaining, years and prior aid cannot be negative")

    def nothing(reason: str) -> Assessment:
        return Assessment(ZERO, ZERO, ZERO, f"{reason}，二次补助 0.00 元")

    # threshold: "剩余自付 >= 10万元（含）" qualifies (seed 000).
    if remaining < plan.threshold:
        return nothing(f"剩余自付 {format_money(remaining)} 元低于起付标准 {format_money(plan.threshold)} 元")
    rows = [r for r in plan.ratios if r.years_from <= years and r.covers(remaining)]
    if not rows:
        return nothing(f"参互 {years} 年、剩余自付 {format_money(remaining)} 元没有适用的补助比例")
    row = max(rows, key=lambda r: (r.years_from, r.bound))
    aid = to_fen(row.rate * remaining)
    note = f"参互 {years} 年，剩余自付 {format_money(remaining)} 元，按 {row.rate} 计 {format_money(aid)} 元"
    # max_aid: the member's cap in the period, "最高不超过50万元" (seed 000).
    room = max(plan.max_aid - prior_aid_in_period, ZERO)
    if aid > room:
        aid = to_fen(room)
        note += f"，受本期最高 {format_money(plan.max_aid)} 元限制（此前已补助 {format_money(prior_aid_in_period)} 元）"
    return Assessment(aid, ZERO, to_fen(prior_aid_in_period + aid), f"{note}，由{LEVEL_NAME_ZH[plan.decided_by]}决定")


