"""Claims that name no settlement (issue #16): second aid for a member's whole period (seed 000) and graded sums
(seed 002 意外伤害, 子女意外伤害).

The same path as a settlement's claim (``service.submit``): find the coverage, screen it (``domain.intake``),
assess it with the pure engine, route it, write it with its step and events in the request's one transaction.
Such a claim carries ``setl_id`` '' and ``med_type`` '' and an empty ``settlement``; its stay dates are the
event date (graded) or the first admission and last discharge of the stays it counts (second aid).

Second aid, as this module reads seed 000 ("在基本医疗保险、大病补充保险、医疗救助、医疗互助活动补助和工会救助保障后，
个人自负剩余费用仍超过10万元（含）的 … 给予不同比例的二次补助，最高不超过50万元"; "在完成第一次补助后 … 进行二次补助申请"):
- the stays counted are those of the member's claims in the period on any other plan whose first aid is decided
  (approved, paid or payment failed): psn_part_amt once per settlement, minus the aid of those claims as it is
  now (every adjustment included). Claims still in review or returned are not counted yet (the first aid is not
  complete; the answer names how many), and rejected, reversed or revoked claims never count.
- plus the member's settlements the bureau sent for the period that no claim names (under the start line, never
  claimed): their psn_part_amt with first aid 0 (seed 000 counts all 个人自负 after every payer); not reversed
  ones, nor those 第十二条 excludes by their med_type (``domain.bureau.exclusion``).
- minus `other_assistance` (工会救助 recorded for the period, given with the claim).
- the member's second aid in the period is the rate of ``domain.aid.assess_second_aid`` on that remaining, at
  most `max_aid`; a later second-aid claim in the same period gets what that total has grown by since the live
  second-aid claims before it, never more than the rest of `max_aid`.
- years of participation: the distinct periods the member was covered in: claims' coverages and the periods run
  before this system whose history import names their ID number (``period.history_recorded``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.claims.calendar import load_calendar
from services.claims.domain.aid import Assessment, assess_second_aid
from services.claims.domain.approval import day_of, submitted
from services.claims.domain.benefits import ADULT_AGE, age_on, assess_graded
from services.claims.domain.bureau import exclusion
from services.claims.domain.intake import CoverageFacts, IntakeFacts, RulebookMissing, screen
from services.claims.domain.second_aid import PeriodStay, remaining_for_period
from services.claims.domain.settlement_check import bureau_date
from services.claims.domain.shares import in_shares
from services.claims.models import Claim, ClaimRightRevocation, Coverage, Settlement
from services.claims.reassessment import DECIDED, LIVE
from services.claims.repository import (
    coverage_on,
    coverages_of,
    rulebook_for,
    years_of_participation,
)
from services.claims.schemas import ClaimIn
from services.claims.service import (
    check_filer,
    reaches,
    record,
    refuse_another_member,
    state_of,
    take_assessment,
    write,
)
from services.claims.waiting import member_unknown, period_not_yet_known
from shared import idnumber
from shared.auth import Principal
from shared.db import Database
from shared.errors import Forbidden, Invalid, NotFound
from shared.masking import mask_certno
from shared.money import format_money, parse_money
from shared.rulebook import GradedPlan, Rulebook, SecondAidPlan
from shared.vocab import ClaimStatus, Role

__all__ = ["submit_without_settlement"]

ZERO = Decimal("0.00")


def _invalid(field: str, msg: str, detail: str, code: str = "validation_failed") -> Invalid:
    return Invalid(detail, code=code, errors=[{"loc": ["body", *field.split(".")], "msg": msg}])


@dataclass(frozen=True)
class Assessed:
    assessment: Assessment
    admission: date
    discharge: date
    diagnosis: dict[str, Any]
    second_aid: dict[str, Any] | None = None


async def _coverage(session: AsyncSession, db: Database, grace_seconds: int, given: ClaimIn, actor: Principal
                    ) -> tuple[Coverage | None, list[Coverage]]:
    """The member's coverage of the claim's period or event date, and every coverage claims knows of them."""
    member_id, certno = given.member_id, given.certno
    if not (member_id or certno):
        if actor.role == Role.MEMBER and actor.member_id:
            member_id = actor.member_id
        else:
            raise _invalid("member_id", "缺少必填项", "member_id 或 certno 必须提供一个。")
    if given.period is not None:
        stmt = select(Coverage).where(Coverage.period == given.period)
        stmt = stmt.where(Coverage.member_id == member_id) if member_id else \
            stmt.where(Coverage.certno == idnumber.lookup_form(certno or ""))
        # locked as it is read: the member's earlier aid in the period is read below, one intake at a time
        coverage = (await session.execute(stmt.with_for_update().execution_options(populate_existing=True))
                    ).scalars().first()
    else:
        assert given.event_date is not None
        coverage = await coverage_on(session, member_id, certno, given.event_date, lock=True)
    if coverage is not None:
        return coverage, [coverage]
    known = await coverages_of(session, member_id) if member_id else []
    if not known and member_id is not None:
        raise await member_unknown(db, f"member:{member_id}", grace_seconds)
    if not known:
        raise NotFound("未找到该身份证号的参互记录。", code="member_not_covered")
    return None, known


def _check_reach(actor: Principal, coverage: Coverage | None, known: list[Coverage], by_certno: bool) -> None:
    if by_certno and not reaches(actor, coverage, known):
        raise NotFound("未找到该身份证号的参互记录。", code="member_not_covered")  # as service.submit: no oracle
    member_id = known[0].member_id
    if actor.role == Role.MEMBER and actor.member_id != member_id:
        raise Forbidden("会员只能为本人申请。", code="not_yourself")
    if actor.role == Role.UNIT_AGENT:
        paths = [coverage.unit_path] if coverage is not None else [c.unit_path for c in known]
        if not any(actor.covers(p) for p in paths):
            raise Forbidden("只能为本单位的参互人员申请。", code="outside_subtree")


async def submit_without_settlement(session: AsyncSession, db: Database, grace_seconds: int, given: ClaimIn,
                                    actor: Principal) -> Claim:
    """A second-aid claim for a member's period or a graded claim: refused at intake or assessed and routed."""
    if given.period is None and (given.grade is None or given.event_date is None):
        missing = "event_date" if given.grade is not None else "grade"
        raise _invalid(missing, "缺少必填项", f"分级给付的申请须写明 grade 和 event_date（缺少 {missing}）。")
    refuse_another_member(actor, given.member_id)
    coverage, known = await _coverage(session, db, grace_seconds, given, actor)
    _check_reach(actor, coverage, known, by_certno=given.member_id is None and given.certno is not None)
    member_id = known[0].member_id
    rulebook = await rulebook_for(session, coverage.period) if coverage else None
    check_filer(rulebook, actor)
    if rulebook is not None and given.plan in {p.code for p in rulebook.plans} and \
            not isinstance(rulebook.plan(given.plan), SecondAidPlan | GradedPlan):
        raise _invalid("plan", "该项目须凭结算单申请",
                       f"“{rulebook.plan(given.plan).name}”须凭医保结算单申请（settlement 或 setl_id）。",
                       code="settlement_required")
    now = datetime.now(UTC)
    day = given.event_date or now.date()
    facts = IntakeFacts(
        plan=given.plan, discharge_date=day, med_type="",
        # A claim for a period (second aid) counts the stays before the member left (第十四条 ends rights from
        # its date): its coverage is screened as not ended, and every other check still applies.
        coverage=CoverageFacts(coverage.period, tuple(coverage.plans),
                               None if given.period is not None else coverage.ended_on) if coverage else None,
        right_revoked=coverage is not None and await session.get(
            ClaimRightRevocation, (member_id, coverage.period)) is not None)
    try:
        refusal = screen(facts, rulebook, day_of(now))
    except RulebookMissing as missing:
        raise period_not_yet_known(missing.period) from None
    home = coverage or next((c for c in known if actor.covers(c.unit_path)), known[0])
    claim = Claim(
        id=uuid.uuid4(), member_id=member_id, period=coverage.period if coverage else None, plan=given.plan,
        status=ClaimStatus.SUBMITTED, setl_id="", med_type="", admission_date=day, discharge_date=day,
        diagnosis={}, settlement={}, unit=home.unit, unit_path=list(home.unit_path), submitted_by=actor.username,
        submitter_org=actor.org if actor.role == Role.UNIT_AGENT else None,
        submitter_path=list(actor.org_path) if actor.role == Role.UNIT_AGENT else [],
        rulebook_code=rulebook.code if rulebook else None)
    path: list[str] = []
    if refusal is None:
        assert coverage is not None and rulebook is not None
        assessed = await _assess(session, claim, rulebook, given, now.date(), coverage)
        claim.admission_date, claim.discharge_date = assessed.admission, assessed.discharge
        claim.diagnosis, claim.second_aid = assessed.diagnosis, assessed.second_aid
        claim.base = ZERO
        path = take_assessment(claim, rulebook, coverage, assessed.assessment)
    state = state_of(claim, [], rulebook, review=path)
    transition = submitted(state, refusal, now, await load_calendar(session) if refusal is None else None)
    write(claim, transition)
    session.add(claim)
    await session.flush()
    await record(session, claim, transition, actor)
    return claim


async def _assess(session: AsyncSession, claim: Claim, rulebook: Rulebook, given: ClaimIn, today: date,
                  coverage: Coverage) -> Assessed:
    try:
        # the plan as the member holds it: times their shares where shares multiply it (domain/shares.py)
        plan = in_shares(rulebook, rulebook.plan(given.plan), coverage.shares or 1)
    except KeyError:
        raise _invalid("plan", "本期没有该项目", f"本期规则书没有项目 {given.plan}。", code="plan_unknown") from None
    if isinstance(plan, SecondAidPlan):
        if given.period is None:
            raise _invalid("period", "缺少必填项", "二次补助按期申请，须写明 period。")
        return await _second_aid(session, claim, plan, given, coverage)
    if isinstance(plan, GradedPlan):
        if given.grade is None or given.event_date is None:
            missing = "grade" if given.grade is None else "event_date"
            raise _invalid(missing, "缺少必填项", f"{plan.name}的申请须写明 grade 和 event_date。")
        return await _graded(session, claim, plan, given, today)
    raise _invalid("plan", "该项目须凭结算单申请",
                   f"“{plan.name}”须凭医保结算单申请（settlement 或 setl_id），不能按期或按等级申请。",
                   code="settlement_required")


async def _prior_aid(session: AsyncSession, claim: Claim, plan_code: str) -> Decimal:
    """The aid of the member's live claims on the plan in the claim's period (their adjustments included)."""
    return Decimal((await session.execute(select(func.coalesce(func.sum(Claim.aid_amount), 0)).where(
        Claim.member_id == claim.member_id, Claim.period == claim.period, Claim.plan == plan_code,
        Claim.status.in_(LIVE)))).scalar_one() or 0)


async def _second_aid(session: AsyncSession, claim: Claim, plan: SecondAidPlan, given: ClaimIn, coverage: Coverage
                     ) -> Assessed:
    """二次补助 for the member's period (seed 000), as the module's docstring reads it."""
    counted = (await session.execute(
        select(Claim.setl_id, Claim.settlement, Claim.aid_amount, Claim.admission_date, Claim.discharge_date,
               Claim.status)
        .where(Claim.member_id == claim.member_id, Claim.period == claim.period, Claim.plan != plan.code,
               Claim.status.in_(LIVE)).order_by(Claim.created_at, Claim.id))).all()
    stays: list[PeriodStay] = []
    seen: set[str] = set()
    pending = 0
    first_aid = ZERO
    dates: list[date] = []
    for setl_id, settlement, aid, admission, discharge, status in counted:
        if not setl_id:
            continue  # a graded sum is no stay: it has no person's part and is not first aid on one
        if status not in DECIDED:
            pending += 1  # "在完成第一次补助后": counted once its first aid is decided
            continue
        part = ZERO
        if setl_id not in seen:  # one stay's person's part once, whatever plans paid on it
            seen.add(setl_id)
            part = Decimal(str((settlement or {}).get("psn_part_amt") or "0"))
            dates += [admission, discharge]
        stays.append(PeriodStay(psn_part_amt=part, first_aid=Decimal(aid or 0)))
        first_aid += Decimal(aid or 0)
    unclaimed = await _unclaimed_stays(session, coverage)
    for setl_id, part, admission, discharge in unclaimed:
        if setl_id in seen:
            continue
        seen.add(setl_id)
        stays.append(PeriodStay(psn_part_amt=part, first_aid=ZERO))
        dates += [admission, discharge]
    other = given.other_assistance or ZERO
    remaining = remaining_for_period(stays, other)
    years = await years_of_participation(session, claim.member_id)
    prior = await _prior_aid(session, claim, plan.code)
    # The member's second aid in the period as of now, then this claim's part of it (max_aid caps the total).
    total = assess_second_aid(plan, remaining, years)
    due = max(total.aid_amount - prior, ZERO)
    room = max(plan.max_aid - prior, ZERO)
    aid = min(due, room)
    note = total.explanation
    if prior > 0:
        note += f"；本期此前已核二次补助 {format_money(prior)} 元，本次 {format_money(aid)} 元"
    psn_part = sum((s.psn_part_amt for s in stays), ZERO)
    second = {
        "remaining_amount": format_money(remaining), "years_of_participation": years,
        "psn_part_amt": format_money(psn_part), "first_aid": format_money(first_aid),
        "other_assistance": format_money(other), "stays": len(seen),
        "unclaimed_stays": len(unclaimed), "claims_pending_first_aid": pending,
        "prior_second_aid": format_money(prior),
        "sources": {"remaining_amount": "本期已核定一次补助的住院及未申请的医保结算记录：个人负担 - 一次补助 - 其他工会救助",
                    "years_of_participation": "本系统的参互记录与往期名单（历史导入）"},
    }
    first, last = (min(dates), max(dates)) if dates else (claim.admission_date, claim.discharge_date)
    return Assessed(Assessment(aid, ZERO, prior + aid, note), first, last,
                    {"icd10": "", "name": plan.name}, second)


async def _unclaimed_stays(session: AsyncSession, coverage: Coverage) -> list[tuple[str, Decimal, date, date]]:
    """The member's settlements the bureau sent for the period that no claim names (e.g. under the start line,
    never claimed): seed 000 counts the member's whole 个人自负 after every payer, first aid 0 on these. Not
    counted: reversed records and reversals, records 第十二条 excludes by themselves (domain/bureau.exclusion:
    outpatient, maternity), and records a claim names (counted through that claim while it is live; a
    rejected or revoked claim's stay stays out, as its decision said)."""
    named = select(Claim.id).where(Claim.setl_id == Settlement.setl_id).exists()
    rows = (await session.execute(select(Settlement).where(
        Settlement.certno == coverage.certno, Settlement.is_reversal.is_(False), Settlement.reversed_at.is_(None),
        ~named).order_by(Settlement.setl_id))).scalars().all()
    out: list[tuple[str, Decimal, date, date]] = []
    for settlement in rows:
        record = settlement.record or {}
        admission, discharge = bureau_date(record.get("begndate")), bureau_date(record.get("enddate"))
        day = settlement.setl_date or discharge
        if day is None or not coverage.coverage_from <= day <= coverage.coverage_to:
            continue  # settled at discharge: the period is the one whose cover holds that day (第三条, 第六条)
        if exclusion(record) is not None:
            continue
        part = settlement.psn_part_amt
        if part is None:
            try:
                part = parse_money(str(record.get("psn_part_amt") or "0"), field="psn_part_amt")
            except (ValueError, ArithmeticError, TypeError):
                continue  # a record whose person's part cannot be read adds nothing
        if part <= 0:
            continue
        out.append((settlement.setl_id, Decimal(part), admission or day, discharge or day))
    return out


async def _graded(session: AsyncSession, claim: Claim, plan: GradedPlan, given: ClaimIn, today: date) -> Assessed:
    """A graded sum (seed 002 意外伤害): the grade's amount within the plan's cap per member and period."""
    assert given.grade is not None and given.event_date is not None
    if given.grade not in {g.code for g in plan.grades}:
        known = "、".join(g.code for g in plan.grades)
        raise _invalid("grade", f"应为：{known}", f"{plan.name}没有等级 {given.grade}（应为：{known}）。",
                       code="grade_unknown")
    birth: date | None = None
    beneficiary: dict[str, Any] | None = None
    if plan.beneficiary == "child":
        child = given.beneficiary
        if child is None:
            raise _invalid("beneficiary", "缺少必填项", f"{plan.name}须写明受益子女的姓名和身份证号（beneficiary）。",
                           code="beneficiary_required")
        try:
            number = idnumber.parse(child.certno, today=today)
        except idnumber.IdNumberError as exc:
            raise Invalid(f"受益子女的身份证号无效：{exc.message}。", code="invalid_certno", errors=[
                {"loc": ["body", "beneficiary", "certno"], "msg": exc.message, "reason": exc.problem.value}]) from None
        birth = number.birth_date
        if birth > given.event_date:
            raise _invalid("beneficiary.certno", "事故发生时尚未出生", "事故发生时该子女尚未出生。",
                           code="beneficiary_not_born")
        if age_on(birth, given.event_date) >= ADULT_AGE:
            raise _invalid("beneficiary.certno", f"事故发生时已满 {ADULT_AGE} 周岁",
                           f"{plan.name}只保障未满 {ADULT_AGE} 周岁的子女（以事故发生当日计）。",
                           code="beneficiary_not_minor")
        beneficiary = {"name": child.name, "certno": mask_certno(number.number), "birth_date": birth.isoformat()}
    elif given.beneficiary is not None:
        raise _invalid("beneficiary", "本项目保障会员本人", f"{plan.name}保障会员本人，不填写 beneficiary。",
                       code="beneficiary_not_allowed")
    # once per yearly cap: the aid of the member's live claims on the plan in the period counts (their
    # adjustments included), as once_per does for fixed plans.
    prior = await _prior_aid(session, claim, plan.code)
    result = assess_graded(plan, given.grade, given.event_date, prior, birth)
    assert result.refusal is None  # grade and age checked above
    label = next(g.label for g in plan.grades if g.code == given.grade)
    diagnosis: dict[str, Any] = {"icd10": "", "name": label, "grade": given.grade}
    if beneficiary is not None:
        diagnosis["beneficiary"] = beneficiary
    return Assessed(Assessment(result.aid_amount, ZERO, result.period_total, result.explanation),
                    given.event_date, given.event_date, diagnosis)
