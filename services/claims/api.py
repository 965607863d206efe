"""Claims' HTTP endpoints (docs/API.md "Claims (8002)")."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError

from services.claims.calendar import load_calendar
from services.claims.domain.aid import Assessment, assess_banded, assess_fixed, assess_second_aid, settlement_base
from services.claims.domain.documents import DOCUMENT_TYPES, missing_documents
from services.claims.domain.routing import review_path
from services.claims.domain.settlement import check_settlement, is_amount
from services.claims.domain.settlement import message as implausible_message
from services.claims.domain.workdays import WorkCalendar, add_working_days
from services.claims.models import (
    IDEMPOTENCY,
    MESSAGING,
    Claim,
    ClaimAdjustment,
    ClaimDocument,
    ClaimRightRevocation,
    ClaimStep,
    Coverage,
    PeriodCopy,
)
from services.claims.reassessment import LIVE, reassess_member_period
from services.claims.settlements import refuse, settlement_reversed
from services.claims.waiting import member_unknown, period_not_yet_known
from shared import idnumber
from shared.auth import REVIEWER_LEVEL, CurrentUser, Principal, require_roles
from shared.deps import SessionDep
from shared.errors import Conflict, Forbidden, Invalid, NotFound
from shared.events import (
    TOPIC_CLAIMS,
    ClaimApproved,
    ClaimRejected,
    ClaimReturned,
    ClaimRevoked,
    ClaimSubmitted,
)
from shared.fields import Money, PastDate, SaneDate, money_problem
from shared.idempotency import idempotent
from shared.messaging import publish
from shared.money import format_money
from shared.rulebook import BandedPlan, FixedPlan, Rulebook, SecondAidPlan, parse_rulebook
from shared.scope import array_in_branch

router = APIRouter(prefix="/api/v1")


class Diagnosis(BaseModel):
    icd10: str = Field(min_length=1, max_length=20)
    name: str = Field(default="", max_length=200)


class SettlementIn(BaseModel):
    model_config = ConfigDict(extra="allow")  # every national field is kept as sent
    setl_id: str = Field(min_length=1, max_length=60)
    med_type: str = Field(min_length=1, max_length=10)
    medfee_sumamt: Money
    fund_pay_sumamt: Money
    psn_part_amt: Money
    fulamt_ownpay_amt: Money = Decimal("0.00")

    def amounts(self) -> dict[str, Decimal]:
        out: dict[str, Decimal] = {}
        for name, value in self.model_dump().items():
            if isinstance(value, Decimal):
                out[name] = value
            elif isinstance(value, str | int) and name.endswith(("_amt", "_pay", "_sumamt")):
                try:
                    out[name] = Decimal(str(value))
                except InvalidOperation:
                    raise Invalid(f"{name} 必须是金额。", errors=[{"loc": ["body", "settlement", name],
                                                                  "msg": "必须是金额"}]) from None
            if name in out and not is_amount(out[name]):  # NaN, infinities, beyond decimal(16,2)
                raise Invalid(f"{name} 必须是有限的金额（不超过 14 位整数）。",
                              errors=[{"loc": ["body", "settlement", name], "msg": "必须是有限的金额"}])
            if name in out and (problem := money_problem(out[name])):
                raise Invalid(f"{name}：{problem}。", errors=[{"loc": ["body", "settlement", name],
                                                             "msg": problem}])
        return out


class SecondAidIn(BaseModel):
    """二次补助 inputs; either may be left out and is then derived (see assess_second_aid_claim)."""

    model_config = ConfigDict(extra="forbid")
    remaining_amount: Money | None = None
    years_of_participation: int | None = Field(default=None, ge=0, le=80)


class ClaimIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    member_id: str | None = Field(default=None, max_length=40)
    certno: str | None = Field(default=None, min_length=15, max_length=18)  # 15 digits: matched as its 18-digit form
    plan: str = Field(default="inpatient", max_length=50)
    admission_date: SaneDate
    discharge_date: PastDate  # a claim is made after the stay
    diagnosis: Diagnosis
    settlement: SettlementIn
    second_aid: SecondAidIn | None = None

    @model_validator(mode="after")
    def _check(self) -> ClaimIn:
        if not (self.member_id or self.certno):
            raise ValueError("member_id 或 certno 必须提供一个")
        if self.discharge_date < self.admission_date:
            raise ValueError("出院日期不能早于入院日期")
        return self


def claim_out(claim: Claim, steps: list[ClaimStep], adjustments: list[ClaimAdjustment] | None = None
              ) -> dict[str, Any]:
    return {
        "claim_id": str(claim.id), "member_id": claim.member_id, "period": claim.period, "plan": claim.plan,
        "status": claim.status,
        "aid_amount": format_money(claim.aid_amount) if claim.aid_amount is not None else None,
        "base": format_money(claim.base) if claim.base is not None else None,
        "cumulative_base": format_money(claim.cumulative_base) if claim.cumulative_base is not None else None,
        "assessed_aid_amount": format_money(claim.assessed_aid) if claim.assessed_aid is not None else None,
        "adjustments": [{"adjustment_id": str(a.id), "amount": format_money(a.amount),
                         "aid_before": format_money(a.aid_before), "aid_after": format_money(a.aid_after),
                         "cause": a.cause, "cause_claim_id": str(a.cause_claim_id) if a.cause_claim_id else None,
                         "reason": a.reason, "rulebook": a.rulebook_code, "announced": a.announced,
                         "by": a.by_username, "at": a.at.isoformat()} for a in adjustments or []],
        "second_aid": claim.second_aid,
        "explanation": claim.explanation, "rulebook": claim.rulebook_code,
        "setl_id": claim.setl_id, "admission_date": claim.admission_date.isoformat(),
        "discharge_date": claim.discharge_date.isoformat(), "diagnosis": claim.diagnosis,
        "rejection": {"code": claim.rejection_code, "detail": claim.rejection_detail}
        if claim.rejection_code else None,
        "approval": {
            "current_level": claim.current_level, "final_level": claim.final_level,
            "due_date": claim.due_date.isoformat() if claim.due_date else None, "due_warning": claim.due_warning,
            "steps": [{"level": s.level, "decision": s.decision, "by": s.by_username, "at": s.at.isoformat(),
                       "reason": s.reason, "rulebook": s.rulebook_code} for s in steps],
        },
        "payment": {"instruction_id": claim.payment_instruction_id, "status": claim.payment_status}
        if claim.payment_instruction_id else None,
        "created_at": claim.created_at.isoformat() if claim.created_at else None,
    }


async def find_coverage(session: SessionDep, body: ClaimIn) -> Coverage | None:
    """The member's coverage whose window contains the discharge date (第三条: the discharge date decides)."""
    stmt = select(Coverage).where(Coverage.coverage_from <= body.discharge_date,
                                  Coverage.coverage_to >= body.discharge_date)
    stmt = stmt.where(Coverage.member_id == body.member_id) if body.member_id else \
        stmt.where(Coverage.certno == idnumber.lookup_form(body.certno or ""))
    return (await session.execute(stmt.order_by(Coverage.coverage_from.desc()))).scalars().first()


async def assess(session: SessionDep, claim: Claim, rulebook: Rulebook, coverage: Coverage,
                 body: ClaimIn) -> Assessment:
    plan = rulebook.plan(claim.plan)
    history = select(func.coalesce(func.sum(Claim.base), 0), func.coalesce(func.sum(Claim.aid_amount), 0),
                     func.count()).where(Claim.member_id == claim.member_id, Claim.plan == claim.plan,
                                         Claim.status.in_(LIVE))
    prior_base, prior_aid, prior_count = (await session.execute(history.where(Claim.period == claim.period))).one()
    if isinstance(plan, BandedPlan):
        try:
            base = settlement_base(plan, body.settlement.amounts())
        except KeyError as exc:
            raise Invalid(f"结算数据缺少规则书要求的字段：{exc.args[0]}", code="settlement_field_missing",
                          errors=[{"loc": ["body", "settlement"], "msg": str(exc.args[0])}]) from None
        claim.base = base
        _, all_aid, _ = (await session.execute(history)).one()
        zero = Decimal("0.00")
        return assess_banded(plan, prior_base or zero, base, prior_aid or zero, all_aid or zero)
    if isinstance(plan, FixedPlan):
        claim.base = Decimal("0.00")
        return assess_fixed(plan, body.diagnosis.icd10, coverage.sex, already_paid_in_period=prior_count > 0)
    if not isinstance(plan, SecondAidPlan):
        # per_day and graded plans load (rulebooks/beijing-2014.yaml) and the pure engine computes them
        # (domain/benefits.py), but claims on them are not taken yet (issue #16): refused, never a 500.
        raise Invalid(f"暂不受理“{plan.name}”这类保障计划的申请（{plan.kind}）。", code="plan_kind_not_supported",
                      errors=[{"loc": ["body", "plan"], "msg": f"plan kind {plan.kind} is not claimable yet"}])
    return await assess_second_aid_claim(session, claim, plan, body)


async def assess_second_aid_claim(session: SessionDep, claim: Claim, plan: SecondAidPlan, body: ClaimIn
                                  ) -> Assessment:
    """二次补助 (seed 000): remaining self-pay after every payer and the first aid, and years of participation.

    Given by the unit agent (the centre's own records) or derived: remaining = psn_part_amt minus the first
    aid on the same settlement; years = the periods claims knows the member was covered in.
    """
    given = body.second_aid or SecondAidIn()
    sources: dict[str, str] = {}
    remaining = given.remaining_amount
    if remaining is None:
        first_aid = (await session.execute(select(func.coalesce(func.sum(Claim.aid_amount), 0)).where(
            Claim.setl_id == claim.setl_id, Claim.plan != claim.plan, Claim.status.in_(LIVE)))).scalar_one()
        remaining = max(body.settlement.psn_part_amt - Decimal(first_aid or 0), Decimal("0.00"))
        sources["remaining_amount"] = f"psn_part_amt {body.settlement.psn_part_amt} - 一次补助 {first_aid}"
    else:
        sources["remaining_amount"] = "given"
    years = given.years_of_participation
    if years is None:
        years = (await session.execute(select(func.count(func.distinct(Coverage.period))).where(
            Coverage.member_id == claim.member_id))).scalar_one()
        sources["years_of_participation"] = "coverages known to claims"
    else:
        sources["years_of_participation"] = "given"
    claim.base = Decimal("0.00")
    claim.second_aid = {"remaining_amount": format_money(remaining), "years_of_participation": years,
                        "sources": sources}
    return assess_second_aid(plan, remaining, years)


@router.post("/claims", status_code=201, tags=["claims"])
@idempotent(IDEMPOTENCY, status=201)
async def submit_claim(request: Request, body: ClaimIn, session: SessionDep,
                       actor: Annotated[Principal, require_roles("unit_agent", "member", "admin")]) -> dict:
    coverage = await find_coverage(session, body)
    if coverage is None and body.member_id is not None and (await session.execute(
            select(Coverage.member_id).where(Coverage.member_id == str(body.member_id)).limit(1))).first() is None:
        # Not a refusal and not a 403: enrollment's member.covered may still be on its way (issue #11).
        raise await member_unknown(request.app.state.db, f"member:{body.member_id}",
                                   request.app.state.settings.reference_grace_seconds)
    if coverage is None and body.member_id is None:
        # An unknown certno is not told apart from an uncovered one: no one learns who is a member.
        raise NotFound("未找到该身份证号在出院日期有效的参互记录。", code="member_not_covered")
    member_id = coverage.member_id if coverage else str(body.member_id)
    if actor.role == "member" and actor.member_id != member_id:
        raise Forbidden("会员只能为本人申请。", code="not_yourself")
    if actor.role == "unit_agent":
        # Without coverage on the discharge date, the member's other coverage tells whose member they are.
        known = coverage or (await session.execute(
            select(Coverage).where(Coverage.member_id == member_id).limit(1))).scalar_one_or_none()
        if known is None or not actor.covers(known.unit_path):
            raise Forbidden("只能为本单位的参互人员申请。", code="outside_subtree")
    implausible = check_settlement(body.settlement.amounts())
    if implausible:  # the settlement's own totals must add up before anything is routed (reference identities)
        raise Invalid(implausible_message(implausible), code="settlement_implausible",
                      errors=[p.as_error(("body", "settlement")) for p in implausible])
    claim = Claim(
        id=uuid.uuid4(), member_id=member_id, period=coverage.period if coverage else None, plan=body.plan,
        status="submitted", setl_id=body.settlement.setl_id, med_type=body.settlement.med_type,
        admission_date=body.admission_date, discharge_date=body.discharge_date,
        diagnosis=body.diagnosis.model_dump(), settlement=body.settlement.model_dump(mode="json"),
        unit=coverage.unit if coverage else None, unit_path=coverage.unit_path if coverage else [],
        submitted_by=actor.username,
    )
    with session.no_autoflush:  # the new claim is written once routed, not half-way by a lookup
        await route_new_claim(session, claim, coverage, body)
    session.add(claim)
    try:
        await session.flush()
    except IntegrityError:
        raise Conflict("该结算单刚被另一份申请使用。", code="duplicate_settlement") from None
    session.add(ClaimStep(claim_id=claim.id, level="unit", decision="submit", by_user=actor.user_id,
                          by_username=actor.username, rulebook_code=claim.rulebook_code, aid_amount=claim.aid_amount))
    await publish(session, MESSAGING, TOPIC_CLAIMS, ClaimSubmitted(
        claim_id=str(claim.id), member_id=member_id, period=claim.period or "", status=claim.status,
        aid_amount=claim.aid_amount))
    if claim.status == "rejected":
        await publish(session, MESSAGING, TOPIC_CLAIMS, ClaimRejected(
            claim_id=str(claim.id), member_id=member_id, period=claim.period or "",
            code=claim.rejection_code or "", detail=claim.rejection_detail or ""))
    return {"claim_id": str(claim.id), "status": claim.status,
            "aid_amount": format_money(claim.aid_amount) if claim.aid_amount is not None else None,
            "rejection": {"code": claim.rejection_code, "detail": claim.rejection_detail}
            if claim.rejection_code else None}


async def route_new_claim(session: SessionDep, claim: Claim, coverage: Coverage | None, body: ClaimIn) -> None:
    """Rule-based refusals end the claim without review (第十二条); otherwise assess and route it (第十条)."""
    if coverage is None:
        return refuse(claim, "not_covered", "出院日期不在该人员的参互有效期内，或其未参互。")
    if coverage.ended_on is not None and body.discharge_date >= coverage.ended_on:
        return refuse(claim, "coverage_ended", f"该人员已于 {coverage.ended_on} 退出，其后不享受互助。")
    period = await session.get(PeriodCopy, coverage.period)
    if period is None:
        raise period_not_yet_known(coverage.period)  # a wait, never a refusal (issue #11)
    rulebook = parse_rulebook(period.rulebook)
    claim.rulebook_code = rulebook.code
    if body.plan not in coverage.plans:
        return refuse(claim, "plan_not_joined", f"该人员本期未参加 {body.plan} 项目。")
    banned = await session.get(ClaimRightRevocation, (claim.member_id, coverage.period))
    if banned is not None:  # 第十三条: fraud cancels the right to claim for the period
        return refuse(claim, "revoked_for_fraud", "该人员本期因欺诈已被取消申请补助的权利。")
    window, today = rulebook.windows.claims, date.today()
    if not window.from_ <= today <= window.to:  # 第十一条 补助办理时间
        return refuse(claim, "claim_window_closed", f"本期补助受理时间为 {window.from_} 至 {window.to}。")
    plan = rulebook.plan(body.plan)
    med_types = getattr(plan, "med_types", None)
    if med_types is not None and body.settlement.med_type not in med_types:  # 第十二条(四) outpatient excluded
        return refuse(claim, "med_type_not_covered", f"医疗类别 {body.settlement.med_type} 不在本项目补助范围内。")
    duplicate = (await session.execute(select(Claim.id).where(Claim.setl_id == claim.setl_id, Claim.plan == claim.plan,
                                                              Claim.status != "rejected"))).first()
    if duplicate is not None:
        return refuse(claim, "duplicate_settlement", "该结算单已申请过补助。")
    if await settlement_reversed(session, claim.setl_id, body.settlement.model_dump().get("mdtrt_id")):
        return refuse(claim, "settlement_reversed", "医保部门已冲销该结算单。")
    assessment = await assess(session, claim, rulebook, coverage, body)
    claim.aid_amount, claim.cumulative_base = assessment.aid_amount, assessment.cumulative_base
    claim.assessed_aid = assessment.aid_amount
    claim.explanation = assessment.explanation
    path = review_path(rulebook.approval, assessment.aid_amount)
    if isinstance(plan, SecondAidPlan):  # decided by the centre (seed 000): straight to it
        path = [plan.decided_by]
    claim.review_path, claim.current_level, claim.final_level = path, path[0], path[-1]
    enter_level(claim, rulebook, path[0], await load_calendar(session))
    claim.status = "in_review"
    return None


def enter_level(claim: Claim, rulebook: Rulebook, level: str, calendar: WorkCalendar | None = None) -> None:
    """The claim reaches a level: its clock starts afresh (第十条: 5 working days for a complete application)."""
    claim.current_level, claim.level_entered_at = level, datetime.now(UTC)
    due = add_working_days(date.today(), rulebook.approval.sla_working_days, calendar)
    claim.due_date, claim.due_warning = due.due, due.warning


async def load_claim(session: SessionDep, claim_id: uuid.UUID, actor: Principal, *, lock: bool = False) -> Claim:
    claim = await session.get(Claim, claim_id, with_for_update=lock)
    if claim is None:
        raise NotFound("申请不存在。", code="claim_not_found")
    if actor.role == "member":
        if actor.member_id != claim.member_id:
            raise Forbidden("只能查看本人的申请。", code="not_yourself")
    elif actor.role == "bureau":  # a bureau sends settlements; it reads no claims
        raise Forbidden("医保部门账号不能查看互助申请。", code="role_not_allowed")
    elif not actor.covers(claim.unit_path):  # finance too: an office's finance sees its office's branch
        raise Forbidden("该申请不在您所属组织的管辖范围内。", code="outside_subtree")
    return claim


async def steps_of(session: SessionDep, claim: Claim) -> list[ClaimStep]:
    return list((await session.execute(select(ClaimStep).where(ClaimStep.claim_id == claim.id)
                                       .order_by(ClaimStep.at))).scalars())


async def adjustments_of(session: SessionDep, claim: Claim) -> list[ClaimAdjustment]:
    return list((await session.execute(select(ClaimAdjustment).where(ClaimAdjustment.claim_id == claim.id)
                                       .order_by(ClaimAdjustment.at))).scalars())


async def full_claim(session: SessionDep, claim: Claim) -> dict[str, Any]:
    return claim_out(claim, await steps_of(session, claim), await adjustments_of(session, claim))


@router.get("/claims/{claim_id}", tags=["claims"])
async def get_claim(claim_id: uuid.UUID, session: SessionDep, actor: CurrentUser) -> dict:
    claim = await load_claim(session, claim_id, actor)
    return await full_claim(session, claim)


@router.get("/review-queue", tags=["claims"])
async def review_queue(session: SessionDep, actor: Annotated[Principal, require_roles(*REVIEWER_LEVEL)]) -> list:
    """Claims waiting at the caller's level in its branch, oldest first, with due dates, amounts and the
    documents still missing (a complete application is what the 5 working days of 第十条 count for)."""
    level = REVIEWER_LEVEL[actor.role]
    claims = list((await session.execute(
        select(Claim).where(Claim.status == "in_review", Claim.current_level == level,
                            array_in_branch(Claim.unit_path, actor.branch))
        .order_by(Claim.level_entered_at, Claim.id).limit(500))).scalars())
    present: dict[uuid.UUID, set[str]] = {c.id: set() for c in claims}
    if claims:
        for claim_id, doc_type in (await session.execute(select(ClaimDocument.claim_id, ClaimDocument.doc_type)
                                                         .where(ClaimDocument.claim_id.in_(list(present))))):
            present[claim_id].add(doc_type)
    kinds = await plan_kinds(session, {(c.period or "", c.plan) for c in claims})
    today = date.today()
    out = []
    for c in claims:
        missing = missing_documents(kinds.get((c.period or "", c.plan), "banded"), present[c.id])
        out.append({"claim_id": str(c.id), "member_id": c.member_id, "period": c.period, "plan": c.plan,
                    "aid_amount": format_money(c.aid_amount) if c.aid_amount is not None else None,
                    "base": format_money(c.base) if c.base is not None else None,
                    "current_level": c.current_level, "final_level": c.final_level,
                    "due_date": c.due_date.isoformat() if c.due_date else None, "due_warning": c.due_warning,
                    "overdue": c.due_date is not None and c.due_date < today,
                    "waiting_since": c.level_entered_at.isoformat() if c.level_entered_at else None,
                    "unit": c.unit, "documents": sorted(present[c.id]), "missing_documents": missing,
                    "missing_documents_zh": [DOCUMENT_TYPES[m] for m in missing]})
    return out


async def plan_kinds(session: SessionDep, keys: set[tuple[str, str]]) -> dict[tuple[str, str], str]:
    kinds: dict[tuple[str, str], str] = {}
    for period_code in {p for p, _ in keys}:
        period = await session.get(PeriodCopy, period_code)
        if period is None:
            continue
        rulebook = parse_rulebook(period.rulebook)
        for p, plan in keys:
            if p == period_code:
                try:
                    kinds[(p, plan)] = rulebook.plan(plan).kind
                except (KeyError, ValueError):
                    continue
    return kinds


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    decision: Literal["approve", "reject", "return"]
    reason: str | None = Field(default=None, max_length=1000)
    reason_code: str | None = Field(default=None, max_length=50)


@router.post("/claims/{claim_id}/decisions", tags=["claims"])
@idempotent(IDEMPOTENCY)
async def decide(request: Request, claim_id: uuid.UUID, body: DecisionIn, session: SessionDep,
                 actor: Annotated[Principal, require_roles(*REVIEWER_LEVEL)]) -> dict:
    claim = await load_claim(session, claim_id, actor, lock=True)
    level = REVIEWER_LEVEL[actor.role]
    if claim.status != "in_review" or claim.current_level != level or actor.org_level != level:
        raise Forbidden(f"该申请当前不在您这一级（{level}）待审。", code="not_your_level")
    steps = await steps_of(session, claim)
    if any(s.by_user == actor.user_id and s.decision != "submit" for s in steps):
        raise Forbidden("同一人不能审批同一申请的两个环节。", code="same_person_twice")
    if body.decision != "approve" and not (body.reason or "").strip():
        raise Invalid("驳回或退回必须写明原因。", code="reason_required",
                      errors=[{"loc": ["body", "reason"], "msg": "必须写明原因"}])
    period = await session.get(PeriodCopy, claim.period)
    assert period is not None
    rulebook = parse_rulebook(period.rulebook)
    session.add(ClaimStep(claim_id=claim.id, level=level, decision=body.decision, by_user=actor.user_id,
                          by_username=actor.username, reason=body.reason, rulebook_code=claim.rulebook_code,
                          aid_amount=claim.aid_amount))
    if body.decision == "approve":
        if level == claim.final_level:
            claim.status, claim.current_level, claim.due_date = "approved", None, None
            await publish(session, MESSAGING, TOPIC_CLAIMS, ClaimApproved(
                claim_id=str(claim.id), member_id=claim.member_id, period=claim.period or "", plan=claim.plan,
                aid_amount=claim.aid_amount or Decimal("0.00"), rulebook_code=claim.rulebook_code or ""))
        else:
            enter_level(claim, rulebook, claim.review_path[claim.review_path.index(level) + 1],
                        await load_calendar(session))
    elif body.decision == "reject":
        refuse(claim, body.reason_code or "rejected_by_reviewer", body.reason or "")
        claim.current_level, claim.due_date = None, None
        await publish(session, MESSAGING, TOPIC_CLAIMS, ClaimRejected(
            claim_id=str(claim.id), member_id=claim.member_id, period=claim.period or "",
            code=claim.rejection_code or "", detail=claim.rejection_detail or ""))
        await session.flush()
        # Its base no longer counts: the member's later stays in the period are assessed again.
        await reassess_member_period(session, member_id=claim.member_id, period=claim.period,
                                     plan_code=claim.plan, cause="late_rejection",
                                     reason=f"同期申请 {claim.id} 被驳回，重新核定", actor=actor, cause_claim=claim)
    else:  # return for documents: the clock stops; resubmission restarts it (see resubmit)
        claim.status, claim.returned_level, claim.due_date = "returned", level, None
        await publish(session, MESSAGING, TOPIC_CLAIMS, ClaimReturned(
            claim_id=str(claim.id), member_id=claim.member_id, level=level, reason=body.reason or ""))
    await session.flush()
    return await full_claim(session, claim)


class NoteIn(BaseModel):
    note: str = Field(default="", max_length=1000)


@router.post("/claims/{claim_id}/resubmission", tags=["claims"])
@idempotent(IDEMPOTENCY)
async def resubmit(request: Request, claim_id: uuid.UUID, body: NoteIn, session: SessionDep,
                   actor: Annotated[Principal, require_roles("unit_agent")]) -> dict:
    claim = await load_claim(session, claim_id, actor, lock=True)
    if claim.status != "returned" or claim.returned_level is None:
        raise Conflict("只有被退回的申请可以重新提交。", code="not_returned")
    period = await session.get(PeriodCopy, claim.period)
    assert period is not None
    # 第十条 counts 5 working days for a complete application: the clock restarts in full at resubmission.
    enter_level(claim, parse_rulebook(period.rulebook), claim.returned_level, await load_calendar(session))
    claim.status, claim.returned_level = "in_review", None
    session.add(ClaimStep(claim_id=claim.id, level="unit", decision="resubmit", by_user=actor.user_id,
                          by_username=actor.username, reason=body.note, rulebook_code=claim.rulebook_code))
    await session.flush()
    return await full_claim(session, claim)


class ReasonIn(BaseModel):
    reason: str = Field(min_length=1, max_length=1000)


@router.post("/claims/{claim_id}/revocation", tags=["claims"])
@idempotent(IDEMPOTENCY)
async def revoke(request: Request, claim_id: uuid.UUID, body: ReasonIn, session: SessionDep,
                 actor: Annotated[Principal, require_roles("centre_reviewer")]) -> dict:
    """第十三条: fraud revokes the claim and asks payments to claw back what was paid."""
    claim = await load_claim(session, claim_id, actor, lock=True)
    if claim.status in ("rejected", "revoked"):
        raise Conflict("该申请已驳回或已撤销。", code="not_revocable")
    claim.status, claim.current_level, claim.due_date = "revoked", None, None
    session.add(ClaimStep(claim_id=claim.id, level="centre", decision="revoke", by_user=actor.user_id,
                          by_username=actor.username, reason=body.reason, rulebook_code=claim.rulebook_code,
                          aid_amount=claim.aid_amount))
    await publish(session, MESSAGING, TOPIC_CLAIMS, ClaimRevoked(
        claim_id=str(claim.id), member_id=claim.member_id, period=claim.period or "", reason=body.reason))
    if claim.period is not None:  # 第十三条: the right to claim in the period ends with it
        await session.execute(insert(ClaimRightRevocation).values(
            member_id=claim.member_id, period=claim.period, claim_id=claim.id, reason=body.reason,
            by_username=actor.username).on_conflict_do_nothing())
    await session.flush()
    await reassess_member_period(session, member_id=claim.member_id, period=claim.period, plan_code=claim.plan,
                                 cause="revoked_for_fraud", reason=f"同期申请 {claim.id} 因欺诈被撤销，重新核定",
                                 actor=actor, cause_claim=claim)
    return await full_claim(session, claim)


@router.get("/coverages", tags=["claims"])
async def coverages(session: SessionDep, actor: Annotated[Principal, require_roles(
        "unit_agent", "agency_reviewer", "office_reviewer", "centre_reviewer", "admin")],
        certno: str | None = None, member_id: str | None = None) -> list[dict]:
    """What claims knows of a person's coverage (its copy of enrollment's events), within the caller's branch."""
    if not (certno or member_id):
        raise Invalid("请提供 certno 或 member_id。", errors=[{"loc": ["query", "certno"], "msg": "缺少必填项"}])
    stmt = select(Coverage)
    stmt = stmt.where(Coverage.certno == idnumber.lookup_form(certno)) if certno else stmt.where(Coverage.member_id == member_id)
    rows = [c for c in (await session.execute(stmt)).scalars() if actor.covers(c.unit_path)]
    return [{"member_id": c.member_id, "period": c.period, "plans": c.plans, "from": c.coverage_from.isoformat(),
             "to": c.coverage_to.isoformat(), "ended_on": c.ended_on.isoformat() if c.ended_on else None,
             "unit": c.unit} for c in rows]
