"""Claims' service layer: each function loads the facts, asks the pure domain (``domain.intake.screen``,
``domain.aid``, ``domain.approval.decide``), applies the transition it returns, and publishes the events it
chose, all in the request's one transaction (committed once, by ``shared.deps.SessionDep``).

The data path of one claim, top to bottom: ``api.py`` (parse, one call here) -> :func:`submit` (facts ->
``screen`` -> :func:`assess` -> ``approval.submitted`` -> :func:`apply`) -> :func:`decide_claim` for each
level (``approval.decide`` -> :func:`apply`) -> events to payments through the outbox (``shared.messaging``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.claims.calendar import CALENDAR_SIGNATURE, load_calendar
from services.claims.domain.aid import Assessment, assess_banded, assess_fixed, settlement_base
from services.claims.domain.approval import ClaimState, Decision, Transition, day_of, decide, submitted
from services.claims.domain.benefits import assess_per_day
from services.claims.domain.exclusions import answers_to_record
from services.claims.domain.intake import CoverageFacts, IntakeFacts, RulebookMissing, screen
from services.claims.domain.routing import review_path
from services.claims.domain.settlement import check_settlement
from services.claims.domain.settlement import message as implausible_message
from services.claims.domain.settlement_check import SettlementCheck, bureau_date, compare
from services.claims.domain.shares import in_shares, shares_note
from services.claims.models import MESSAGING, Claim, ClaimRightRevocation, ClaimStep, Coverage, Settlement
from services.claims.reassessment import LIVE, reassess_member_period
from services.claims.repository import (
    adjustments_of,
    coverage_on,
    coverages_of,
    load_claim,
    rulebook_for,
    rulebook_with,
    steps_of,
    term_periods,
)
from services.claims.schemas import ClaimFacts, ClaimIn, ClaimOut, Diagnosis, SettlementIn
from services.claims.settlements import settlement_reversed
from services.claims.stats import ClaimPaidAt
from services.claims.waiting import member_unknown, period_not_yet_known
from shared import idnumber
from shared.auth import Principal
from shared.db import Database
from shared.errors import Conflict, Forbidden, Invalid, NotFound
from shared.events import TOPIC_CLAIMS
from shared.messaging import publish
from shared.rulebook import BandedPlan, FixedPlan, PerDayPlan, Rulebook, SecondAidPlan
from shared.vocab import ClaimStatus, Role

ZERO = Decimal("0.00")


@dataclass(frozen=True)
class Assessed:
    assessment: Assessment
    base: Decimal


# --- intake -----------------------------------------------------------------------------------------------
async def resolve(session: AsyncSession, given: ClaimIn, actor: Principal
                  ) -> tuple[ClaimFacts, SettlementCheck, str | None, Settlement | None]:
    """The claim's facts: as typed in, completed and corrected by the bureau's record of its settlement when the
    bureau has sent it (domain/settlement_check.py); with the check, the record's certno and the stored record."""
    setl_id = given.setl_id or (given.settlement.setl_id if given.settlement else "")
    stored = await session.get(Settlement, setl_id)
    record = dict(stored.record) if stored is not None else None
    bureau: SettlementIn | None = None
    if record is not None:
        try:  # the bureau's figures, when its record is complete enough to assess on
            bureau = SettlementIn.model_validate({**record, "setl_id": setl_id})
            bureau.amounts()
        except (ValidationError, Invalid):
            bureau = None
    settlement = bureau or given.settlement
    if settlement is None:
        if record is not None:
            raise Invalid("医保部门的结算记录不完整，请填写结算数据。", code="settlement_record_incomplete",
                          errors=[{"loc": ["body", "settlement"], "msg": "结算记录缺少字段或金额无效"}])
        raise Invalid("医保部门尚未推送该结算单，请填写结算数据。", code="settlement_not_found",
                      errors=[{"loc": ["body", "setl_id"], "msg": "未找到该结算单"}])
    bureau_dates = {"admission_date": bureau_date(record.get("begndate")) if record else None,
                    "discharge_date": bureau_date(record.get("enddate")) if record else None}
    typed_values: dict[str, Any] = {**(given.settlement.amounts() if given.settlement else {}),
                                    "med_type": given.settlement.med_type if given.settlement else None,
                                    "admission_date": given.admission_date, "discharge_date": given.discharge_date}
    check = compare(typed_values, None if record is None else {**record, **bureau_dates})
    admission = bureau_dates["admission_date"] or given.admission_date
    discharge = bureau_dates["discharge_date"] or given.discharge_date
    diagnosis = given.diagnosis
    if diagnosis is None and record is not None and str(record.get("dscg_maindiag_code") or "").strip():
        diagnosis = Diagnosis(icd10=str(record["dscg_maindiag_code"]).strip()[:20],
                              name=str(record.get("dscg_maindiag_name") or "")[:200])
    missing = [name for name, value in (("admission_date", admission), ("discharge_date", discharge),
                                        ("diagnosis", diagnosis)) if value is None]
    if missing:
        raise Invalid(f"缺少必填项：{'、'.join(missing)}（结算记录中也没有）。", errors=[
            {"loc": ["body", name], "msg": "缺少必填项"} for name in missing])
    assert admission is not None and discharge is not None and diagnosis is not None
    if discharge < admission:
        raise Invalid("出院日期不能早于入院日期。", errors=[{"loc": ["body", "discharge_date"], "msg": "早于入院日期"}])
    member_id, certno = given.member_id, given.certno
    record_certno = str(record.get("certno") or "").strip() or None if record else None
    if not (member_id or certno):
        if actor.role == Role.MEMBER and actor.member_id:  # one tap: a member claims for themselves
            member_id = actor.member_id
        elif record_certno:
            certno = record_certno
        else:
            raise Invalid("member_id 或 certno 必须提供一个。", errors=[{"loc": ["body", "member_id"],
                                                                      "msg": "缺少必填项"}])
    facts = ClaimFacts(member_id=member_id, certno=certno, plan=given.plan, admission_date=admission,
                       discharge_date=discharge, diagnosis=diagnosis, settlement=settlement)
    return facts, check, record_certno, stored


async def submit(session: AsyncSession, db: Database, grace_seconds: int, given: ClaimIn, actor: Principal
                 ) -> Claim:
    """A new claim: refused at intake (第三/十一/十二/十三条) or assessed and routed to its first level (第十条)."""
    if given.second_aid is not None:  # typed-in remaining or years are not trusted (issue #12 item 3)
        raise second_aid_per_period("second_aid")
    if given.names_no_settlement:  # second aid per period, a graded sum (issue #16)
        from services.claims.plan_claims import submit_without_settlement
        return await submit_without_settlement(session, db, grace_seconds, given, actor)
    body, check, record_certno, stored = await resolve(session, given, actor)
    refuse_another_member(actor, body.member_id)
    # Locked at once (the intake lock, repository.coverage_on): the member's earlier aid in the period is read below, so
    # one intake of the member and period at a time; a refused request holds it only until it ends.
    coverage = await coverage_on(session, body.member_id, body.certno, body.discharge_date, lock=True)
    known = [coverage] if coverage else (await coverages_of(session, body.member_id) if body.member_id else [])
    if not known and body.member_id is not None:
        # Not a refusal and not a 403: enrollment's member.covered may still be on its way (issue #11).
        raise await member_unknown(db, f"member:{body.member_id}", grace_seconds)
    if not known:
        # An unknown certno is not told apart from an uncovered one: no one learns who is a member.
        raise member_not_covered()
    member_id = known[0].member_id
    if body.member_id is None and not reaches(actor, coverage, known):
        # By ID number, a person covered outside the caller's reach gets the answer of a person nobody covers:
        # neither a member nor an agent of another unit learns that this ID number belongs to a member.
        raise member_not_covered()
    if actor.role == Role.MEMBER and actor.member_id != member_id:
        raise Forbidden("会员只能为本人申请。", code="not_yourself")
    if actor.role == Role.UNIT_AGENT:
        if coverage is not None and not actor.covers(coverage.unit_path):
            raise Forbidden("只能为本单位的参互人员申请。", code="outside_subtree")
        if coverage is None and not any(actor.covers(c.unit_path) for c in known):
            # Known only elsewhere: this unit's coverage of the member may still be on its way (issue #10).
            raise await member_unknown(db, f"member:{member_id}:{actor.org}", grace_seconds)
    implausible = check_settlement(body.settlement.amounts())
    if implausible:  # the settlement's own totals must add up before anything is routed (reference identities)
        raise Invalid(implausible_message(implausible), code="settlement_implausible",
                      errors=[p.as_error(("body", "settlement")) for p in implausible])

    if record_certno and idnumber.lookup_form(record_certno) != known[0].certno:
        # The bureau's record is another person's stay: no claim on it, and nothing of that person is shown.
        raise Invalid("该结算单不属于申请人员。", code="settlement_of_another_person",
                      errors=[{"loc": ["body", "setl_id"], "msg": "结算单的身份证号与申请人员不符"}])
    now = datetime.now(UTC)
    rulebook, calendar_signature = await rulebook_with(session, coverage.period, *CALENDAR_SIGNATURE) \
        if coverage else (None, None)
    check_filer(rulebook, actor)
    if rulebook is not None and _is_second_aid(rulebook, body.plan):
        raise second_aid_per_period("setl_id" if given.setl_id is not None else "settlement")
    facts = await intake_facts(session, body, member_id, coverage, stored)
    try:
        refusal = screen(facts, rulebook, day_of(now))
    except RulebookMissing as missing:
        raise period_not_yet_known(missing.period) from None  # a wait, never a refusal (issue #11)
    home = coverage or next((c for c in known if actor.covers(c.unit_path)), known[0])
    claim = Claim(
        id=uuid.uuid4(), member_id=member_id, period=coverage.period if coverage else None, plan=body.plan,
        status=ClaimStatus.SUBMITTED, setl_id=body.settlement.setl_id, med_type=body.settlement.med_type,
        admission_date=body.admission_date, discharge_date=body.discharge_date,
        diagnosis=body.diagnosis.model_dump(), settlement=body.settlement.model_dump(mode="json"),
        unit=home.unit, unit_path=list(home.unit_path), submitted_by=actor.username,
        # the submitting unit reads what it submitted (staff above it reach it through the member's unit_path)
        submitter_org=actor.org if actor.role == Role.UNIT_AGENT else None,
        submitter_path=list(actor.org_path) if actor.role == Role.UNIT_AGENT else [],
        rulebook_code=rulebook.code if rulebook else None, settlement_check=check.as_json())
    path: list[str] = []
    if refusal is None:
        assert coverage is not None and rulebook is not None
        assessed = await assess(session, claim, rulebook, coverage, body)
        claim.base = assessed.base
        path = take_assessment(claim, rulebook, coverage, assessed.assessment)
    state = state_of(claim, [], rulebook, review=path)
    transition = submitted(state, refusal, now,
                           await load_calendar(session, calendar_signature) if refusal is None else None)
    write(claim, transition)
    session.add(claim)
    try:
        await session.flush()
    except IntegrityError:
        raise Conflict("该结算单刚被另一份申请使用。", code="duplicate_settlement") from None
    await record(session, claim, transition, actor)
    return claim


def member_not_covered() -> NotFound:
    return NotFound("未找到该身份证号在出院日期有效的参互记录。", code="member_not_covered")


def refuse_another_member(actor: Principal, member_id: str | None) -> None:
    """A member claims for themselves only: another member id is refused before any look-up (so the answer is the
    same whether that id exists or not)."""
    if actor.role == Role.MEMBER and member_id is not None and member_id != actor.member_id:
        raise Forbidden("会员只能为本人申请。", code="not_yourself")


def reaches(actor: Principal, coverage: Coverage | None, known: list[Coverage]) -> bool:
    """Whether the caller may claim for the person these coverages are of: a member for themselves, a unit agent
    for a person covered in their branch (on the day, or at all while a transfer may be on its way); staff above
    the unit are checked by their roles."""
    if actor.role == Role.MEMBER:
        return actor.member_id == known[0].member_id
    if actor.role == Role.UNIT_AGENT:
        return any(actor.covers(c.unit_path) for c in ([coverage] if coverage is not None else known))
    return True


def take_assessment(claim: Claim, rulebook: Rulebook, coverage: Coverage, assessment: Assessment) -> list[str]:
    """Write a new claim's assessment (aid, cumulative base, explanation with its shares) and answer the levels
    that review it: second aid goes to the level the plan names (seed 000: the centre), others by amount (第十条)."""
    claim.aid_amount = claim.assessed_aid = assessment.aid_amount
    plan = rulebook.plan(claim.plan)
    claim.cumulative_base = assessment.cumulative_base
    claim.explanation = shares_note(rulebook, plan, coverage.shares or 1) + assessment.explanation
    return [plan.decided_by] if isinstance(plan, SecondAidPlan) else review_path(rulebook.approval,
                                                                                 assessment.aid_amount)


async def intake_facts(session: AsyncSession, body: ClaimFacts, member_id: str, coverage: Coverage | None,
                       stored: Settlement | None) -> IntakeFacts:
    """What intake screens on (domain/intake.py): the coverage, and in one round trip whether the settlement is
    claimed already and whether the member's right to claim in the period was revoked (第十三条); ``stored``: the
    bureau's record of the settlement as ``resolve`` found it (None: not sent)."""
    if coverage is None:
        return IntakeFacts(plan=body.plan, discharge_date=body.discharge_date, med_type=body.settlement.med_type,
                           coverage=None)
    setl_id = body.settlement.setl_id
    claimed = select(Claim.id).where(
        Claim.setl_id == setl_id, Claim.plan == body.plan, Claim.status != ClaimStatus.REJECTED).exists()
    revoked = select(ClaimRightRevocation.claim_id).where(
        ClaimRightRevocation.member_id == member_id, ClaimRightRevocation.period == coverage.period).exists()
    is_claimed, is_revoked = (await session.execute(select(claimed, revoked))).one()
    return IntakeFacts(
        plan=body.plan, discharge_date=body.discharge_date, med_type=body.settlement.med_type,
        coverage=CoverageFacts(coverage.period, tuple(coverage.plans), coverage.ended_on),
        right_revoked=bool(is_revoked), settlement_claimed=bool(is_claimed),
        settlement_reversed=await settlement_reversed(
            session, (body.settlement.model_extra or {}).get("mdtrt_id"), stored))


async def assess(session: AsyncSession, claim: Claim, rulebook: Rulebook, coverage: Coverage, body: ClaimFacts
                 ) -> Assessed:
    """The member's history in the plan, then the pure engine of the plan's kind (domain/aid.py), on the plan
    as the member holds it: times their shares where shares multiply it (domain/shares.py, seed 002)."""
    plan = in_shares(rulebook, rulebook.plan(claim.plan), coverage.shares or 1)
    in_period = Claim.period == claim.period
    # The member's live claims in the plan, in this period and in all periods, in one round trip.
    prior_base, prior_aid, prior_paid, all_aid = (await session.execute(select(
        func.coalesce(func.sum(Claim.base).filter(in_period), 0),
        func.coalesce(func.sum(Claim.aid_amount).filter(in_period), 0),
        func.count().filter(in_period, Claim.aid_amount > 0),
        func.coalesce(func.sum(Claim.aid_amount), 0)).where(
        Claim.member_id == claim.member_id, Claim.plan == claim.plan, Claim.status.in_(LIVE)))).one()
    if isinstance(plan, BandedPlan):
        try:
            base = settlement_base(plan, body.settlement.amounts())
        except KeyError as exc:
            raise Invalid(f"结算数据缺少规则书要求的字段：{exc.args[0]}", code="settlement_field_missing",
                          errors=[{"loc": ["body", "settlement"], "msg": str(exc.args[0])}]) from None
        return Assessed(assess_banded(plan, prior_base or ZERO, base, prior_aid or ZERO, all_aid or ZERO), base)
    if isinstance(plan, FixedPlan):
        # once_per: period (seed 004) counts aid paid: an earlier stay that paid nothing does not use it up.
        span = "本期"
        if plan.once_per == "term":  # seed 002 重大疾病 "三年90元": one payment in the member's term
            term = await term_periods(session, claim.member_id, plan, rulebook, coverage.period)
            prior_paid = (await session.execute(select(func.count()).where(
                Claim.member_id == claim.member_id, Claim.plan == claim.plan, Claim.period.in_(term),
                Claim.status.in_(LIVE), Claim.aid_amount > 0))).scalar_one()
            span = f"本保障期（{'、'.join(term)}）"
        return Assessed(assess_fixed(plan, body.diagnosis.icd10, coverage.sex, already_paid_in_period=prior_paid > 0,
                                     span=span), ZERO)
    if isinstance(plan, PerDayPlan):
        # seed 002 住院津贴: the period's paid days so far are the live aid over the one rate (aid = rate x days).
        prior_days = int((Decimal(prior_aid or 0) / plan.rate_per_day).to_integral_value())
        day = assess_per_day(plan, body.admission_date, body.discharge_date, prior_days, coverage.coverage_from)
        total = Decimal(prior_aid or 0) + day.aid_amount
        return Assessed(Assessment(day.aid_amount, ZERO, total, day.explanation), ZERO)
    if isinstance(plan, SecondAidPlan):  # refused before assessment (submit): claimed per member and period
        raise second_aid_per_period("settlement")
    # A graded sum (seed 002 意外伤害) names its grade and event date, not a settlement (plan_claims.py).
    raise Invalid(f"“{plan.name}”按等级给付，请写明 grade 和 event_date，不填结算单。", code="grade_required",
                  errors=[{"loc": ["body", "grade"], "msg": "缺少必填项"}])


def _is_second_aid(rulebook: Rulebook, plan_code: str) -> bool:
    try:
        return isinstance(rulebook.plan(plan_code), SecondAidPlan)
    except KeyError:
        return False


def second_aid_per_period(field: str) -> Invalid:
    """二次补助 is per member and period (seed 000, issue #16 item 1), on the figures the system holds: a claim
    naming a settlement or typing in `second_aid` figures is refused, naming the field."""
    return Invalid(
        "二次补助按会员和互助期申请，不凭单张结算单，也不接受填写的剩余费用或参互年限：请提交 "
        '{"member_id", "plan": "second-aid", "period", "other_assistance"}，剩余费用和参互年限由系统根据本期结算记录、'
        "一次补助和参互记录计算。", code="second_aid_per_period",
        errors=[{"loc": ["body", field], "msg": "二次补助按期申请（member_id、period、other_assistance），不填此项"}])


# --- approval ---------------------------------------------------------------------------------------------
def state_of(claim: Claim, steps: list[ClaimStep], rulebook: Rulebook | None, review: list[str] | None = None
             ) -> ClaimState:
    return ClaimState(
        claim_id=str(claim.id), member_id=claim.member_id, period=claim.period, plan=claim.plan,
        status=ClaimStatus(claim.status), aid_amount=claim.aid_amount, rulebook_code=claim.rulebook_code,
        review_path=tuple(review if review is not None else claim.review_path or ()),
        current_level=claim.current_level, final_level=claim.final_level, returned_level=claim.returned_level,
        level_entered_at=claim.level_entered_at, due_date=claim.due_date, due_warning=claim.due_warning,
        deciders=frozenset(s.by_user for s in steps if s.decision != "submit"),
        sla_working_days=rulebook.approval.sla_working_days if rulebook else 5,
        settlement_status=(claim.settlement_check or {}).get("status"),
        settlement_of_another="certno" in ((claim.settlement_check or {}).get("differences") or {}),
        settlement_source=settlement_source_of(rulebook, claim.plan))


def settlement_source_of(rulebook: Rulebook | None, plan_code: str) -> str:
    """The plan's ``settlement_source`` (第九条), ``paper_allowed`` where the rulebook or plan is unknown."""
    if rulebook is None:
        return "paper_allowed"
    try:
        return rulebook.plan(plan_code).settlement_source
    except KeyError:
        return "paper_allowed"


async def apply(session: AsyncSession, claim: Claim, transition: Transition, actor: Principal,
                exclusions: dict[str, bool] | None = None) -> None:
    """Write the transition on the claim, then record it."""
    write(claim, transition)
    await record(session, claim, transition, actor, exclusions)


def write(claim: Claim, transition: Transition) -> None:
    """The claim's new state, as the domain decided it."""
    new = transition.state
    claim.status, claim.review_path = new.status, list(new.review_path)
    claim.current_level, claim.final_level, claim.returned_level = new.current_level, new.final_level, \
        new.returned_level
    claim.level_entered_at, claim.due_date, claim.due_warning = new.level_entered_at, new.due_date, new.due_warning
    if transition.rejection is not None:
        claim.rejection_code, claim.rejection_detail = transition.rejection.code, transition.rejection.detail


async def record(session: AsyncSession, claim: Claim, transition: Transition, actor: Principal,
                 exclusions: dict[str, bool] | None = None) -> None:
    """The transition's audit step (with the exclusions checklist answered, 第十二条), its events, and what it
    asks for besides (第十三条, reassessment)."""
    step = transition.step
    session.add(ClaimStep(claim_id=claim.id, level=step.level, decision=step.decision, by_user=actor.user_id,
                          by_username=actor.username, reason=step.reason, rulebook_code=claim.rulebook_code,
                          aid_amount=claim.aid_amount, exclusions=exclusions))
    for event in transition.events:
        await publish(session, MESSAGING, TOPIC_CLAIMS, event)
    if transition.revoke_right and claim.period is not None:  # 第十三条: the right to claim in the period ends
        await session.execute(insert(ClaimRightRevocation).values(
            member_id=claim.member_id, period=claim.period, claim_id=claim.id, reason=step.reason or "",
            by_username=actor.username).on_conflict_do_nothing())
    await session.flush()
    if transition.reassess_cause is not None:  # its base no longer counts: the member's later stays again
        what = "被驳回" if transition.reassess_cause == "late_rejection" else "因欺诈被撤销"
        await reassess_member_period(session, member_id=claim.member_id, period=claim.period, plan_code=claim.plan,
                                     cause=transition.reassess_cause, reason=f"同期申请 {claim.id} {what}，重新核定",
                                     actor=actor, cause_claim=claim)
        await session.flush()


async def decide_claim(session: AsyncSession, claim_id: uuid.UUID, actor: Principal, decision: Decision,
                       exclusions: dict[str, bool] | None = None) -> tuple[Claim, Rulebook | None]:
    """A reviewer's decision, a unit's resubmission or the centre's revocation (domain.approval.decide), with
    the reviewer's answers to the exclusions checklist (第十二条, domain/exclusions.py); the claim and the
    period's rulebook (for ``view_of``)."""
    claim = await load_claim(session, claim_id, actor, lock=True)
    steps = await steps_of(session, claim)
    rulebook = await rulebook_for(session, claim.period)
    state = state_of(claim, steps, rulebook)
    transition = decide(state, actor, decision, datetime.now(UTC), await load_calendar(session))
    answers = None
    if decision.kind in ("approve", "reject", "return"):
        answers = answers_to_record(
            rulebook.exclusions_checklist if rulebook else None, exclusions, kind=decision.kind,
            approving=transition.state.status == ClaimStatus.APPROVED, reason_code=decision.reason_code)
    await apply(session, claim, transition, actor, answers)
    return claim, rulebook


async def claim_view(session: AsyncSession, claim: Claim) -> ClaimOut:
    return await view_of(session, claim, await rulebook_for(session, claim.period))


async def view_of(session: AsyncSession, claim: Claim, rulebook: Rulebook | None) -> ClaimOut:
    """The claim as its API shows it, under its period's rulebook (the exclusions checklist)."""
    paid_at = (await session.execute(select(ClaimPaidAt.paid_at).where(
        ClaimPaidAt.claim_id == str(claim.id)))).scalar_one_or_none()
    return ClaimOut.of(claim, await steps_of(session, claim), await adjustments_of(session, claim), paid_at,
                       rulebook.exclusions_checklist if rulebook else None)


def check_filer(rulebook: Rulebook | None, actor: Principal) -> None:
    """Seed 001 "职工申请办理互助金时，应由职工所在单位工会统一进行办理": where the rulebook says `filed_by: unit`,
    a member's own claim is refused (403 ``claims_filed_by_unit``); the unit agent files it."""
    if rulebook is not None and actor.role == Role.MEMBER and not rulebook.members_may_file:
        raise Forbidden(f"{rulebook.name}的补助申请由所在单位工会统一办理，会员不能自行申请。",
                        code="claims_filed_by_unit")

