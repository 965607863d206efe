"""The member's own claims and bureau records for the app (issue #13 items 2 and 3).

- ``GET /api/v1/me/claims``: each of the member's claims with its timeline (submitted, each level's decision
  with its date, returned / resubmitted, approved, the payment instruction, paid or failed with the bank's
  reason), its aid told in plain Chinese band by band (domain/plain_aid.py, from the assessment stored on the
  claim), and the documents still missing while the claim is being decided (domain/documents.py, 第十条
  "资料齐全").
- ``GET /api/v1/me/settlements``: the bureau's records of the member's stays that no live claim uses yet, the
  start of a one-tap claim (零跑腿); identity fields of the raw record are never sent back.

What claims knows of payments comes from the payment events it already consumes: each one is also written to
``claim_payment_events`` (once per instruction, attempt and kind) by ``recording_payments``, so the timeline
has the dates and the bank's reason. A batch's release is told line by line (payment.batch_lines_released, in
parts of at most 2,000 lines): each line becomes a ``batch_released`` row of the same table, so the timeline
shows the day the batch went to the bank. Such a row needs nothing else to exist: a release arriving before the
instruction's own event (they travel under different keys) is kept, and the timeline orders them by date.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from sqlalchemy import BigInteger, DateTime, Integer, Numeric, String, Text, exists, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from services.claims.domain.documents import DOCUMENT_TYPES, missing_documents
from services.claims.domain.plain_aid import explain_banded
from services.claims.models import (
    Base,
    Claim,
    ClaimAdjustment,
    ClaimDocument,
    ClaimStep,
    Coverage,
    Settlement,
)
from services.claims.repository import rulebook_for
from shared.auth import Principal, require_roles
from shared.deps import SessionDep
from shared.errors import NotFound
from shared.events import (
    Envelope,
    EventPayload,
    PaymentBatchLinesReleased,
    PaymentFailed,
    PaymentInstructionCreated,
    PaymentSettled,
)
from shared.masking import mask_certno
from shared.messaging import Handler
from shared.rulebook import BandedPlan, Plan
from shared.schemas import MoneyOut, problem_responses
from shared.vocab import LEVEL_NAME_ZH, ClaimStatus

router = APIRouter(prefix="/api/v1", tags=["member app"])
MAX_ITEMS = 100
BEIJING = timezone(timedelta(hours=8))


# --- claims' read model of payments ---------------------------------------------------------------------------
class ClaimPaymentEvent(Base):
    """A payment event about a claim as claims received it: the instruction, the transfer paid, or failed."""

    __tablename__ = "claim_payment_events"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    claim_id: Mapped[str] = mapped_column(String(40), index=True)
    instruction_id: Mapped[str] = mapped_column(String(40))
    attempt: Mapped[int] = mapped_column(Integer)
    adjustment_id: Mapped[str] = mapped_column(String(40), server_default="", default="")
    kind: Mapped[str] = mapped_column(String(20))  # PaymentKind
    amount: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    reason: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class PaymentKind(StrEnum):
    INSTRUCTION = "instruction"
    RELEASED = "batch_released"  # the instruction's batch was released to the bank
    PAID = "paid"
    FAILED = "failed"


def payment_row(envelope: Envelope, event: EventPayload) -> dict[str, Any] | None:
    """The read-model row of a payment event (None for any other event)."""
    common = {"at": envelope.occurred_at}
    if isinstance(event, PaymentInstructionCreated):
        return {**common, "claim_id": event.claim_id, "instruction_id": event.instruction_id,
                "attempt": event.attempt, "adjustment_id": event.adjustment_id or "", "kind": PaymentKind.INSTRUCTION,
                "amount": event.amount, "reason": None}
    if isinstance(event, PaymentSettled):
        return {**common, "claim_id": event.claim_id, "instruction_id": event.instruction_id,
                "attempt": event.attempt, "adjustment_id": event.adjustment_id or "", "kind": PaymentKind.PAID,
                "amount": event.amount, "reason": None}
    if isinstance(event, PaymentFailed):
        return {**common, "claim_id": event.claim_id, "instruction_id": event.instruction_id,
                "attempt": event.attempt, "adjustment_id": event.adjustment_id or "", "kind": PaymentKind.FAILED,
                "amount": None, "reason": event.reason}
    return None


def recording_payment(handler: Handler) -> Handler:
    """Wrap a payment handler: once it has applied the event (it raises for a claim not known yet, and the
    event then waits), the event is also remembered for the timeline; a replay adds nothing."""

    async def handle(session: AsyncSession, envelope: Envelope, event: EventPayload) -> None:
        await handler(session, envelope, event)
        row = payment_row(envelope, event)
        if row is not None:
            await session.execute(insert(ClaimPaymentEvent).values(**row).on_conflict_do_nothing())

    return handle


async def batch_released(session: AsyncSession, envelope: Envelope, event: EventPayload) -> None:
    """A part of a released batch: one ``batch_released`` row per line, once (a replay or a second copy of the
    part adds nothing); claims not known here yet are kept all the same (their events may come later)."""
    assert isinstance(event, PaymentBatchLinesReleased)
    rows = [{"claim_id": line.claim_id[:40], "instruction_id": line.instruction_id[:40], "attempt": line.attempt,
             "adjustment_id": (line.adjustment_id or "")[:40], "kind": PaymentKind.RELEASED, "amount": None,
             "reason": None, "at": event.released_at} for line in event.lines]
    for start in range(0, len(rows), 1000):
        await session.execute(insert(ClaimPaymentEvent).on_conflict_do_nothing(), rows[start:start + 1000])


def recording_payments(handlers: dict[str, Handler]) -> dict[str, Handler]:
    """The payment handlers wrapped to keep their events for the timeline, and the batch releases' lines."""
    payment_types = (PaymentInstructionCreated.TYPE, PaymentSettled.TYPE, PaymentFailed.TYPE)
    return {**{t: recording_payment(h) if t in payment_types else h for t, h in handlers.items()},
            PaymentBatchLinesReleased.TYPE: batch_released}


# --- response models ----------------------------------------------------------------------------------------
class TimelineKind(StrEnum):
    SUBMITTED = "submitted"
    REFUSED = "refused"  # by a rule at submission (第十二条), no reviewer involved
    LEVEL_APPROVED = "level_approved"  # approved at a level below the one whose authority covers the amount
    APPROVED = "approved"
    RETURNED = "returned"
    RESUBMITTED = "resubmitted"
    REJECTED = "rejected"
    REVOKED = "revoked"
    ADJUSTED = "adjusted"
    REVERSED = "reversed"
    PAYMENT_INSTRUCTION = "payment_instruction"
    BATCH_RELEASED = "batch_released"
    PAID = "paid"
    PAYMENT_FAILED = "payment_failed"


class TimelineEntry(BaseModel):
    kind: TimelineKind
    at: datetime
    level: str | None = None
    text: str = Field(description="what happened, in Chinese, for the member")
    amount: MoneyOut | None = None
    reason: str | None = None


class AidAdjustment(BaseModel):
    amount: MoneyOut
    aid_before: MoneyOut
    aid_after: MoneyOut
    cause: str
    reason: str
    at: datetime


class MyAid(BaseModel):
    amount: MoneyOut | None = Field(description="what the member is due now")
    assessed_amount: MoneyOut | None = Field(description="what the first assessment gave")
    base: MoneyOut | None = None
    cumulative_base: MoneyOut | None = None
    explanation: list[str] = Field(description="the bands used, in plain Chinese")
    detail: str | None = Field(default=None, description="the assessment as stored on the claim")
    rulebook: str | None = None
    adjustments: list[AidAdjustment] = []


class Rejection(BaseModel):
    code: str
    detail: str


class MyClaim(BaseModel):
    claim_id: str
    period: str | None
    plan: str
    plan_name: str
    status: ClaimStatus
    status_text: str
    setl_id: str
    admission_date: date
    discharge_date: date
    current_level: str | None
    due_date: date | None
    rejection: Rejection | None
    aid: MyAid
    timeline: list[TimelineEntry]
    documents: list[str]
    missing_documents: list[str] = Field(description="document types a complete application still needs")
    missing_documents_text: list[str]
    created_at: datetime


class MySettlement(BaseModel):
    setl_id: str
    mdtrt_id: str | None
    med_type: str
    hospital: str | None
    admission_date: date | None
    discharge_date: date | None
    settled_at: str | None
    diagnosis_code: str | None
    diagnosis_name: str | None
    certno: str | None = Field(description="masked")
    medfee_sumamt: MoneyOut | None
    fund_pay_sumamt: MoneyOut | None
    psn_part_amt: MoneyOut | None
    fulamt_ownpay_amt: MoneyOut | None
    received_at: datetime


STATUS_TEXT = {
    ClaimStatus.SUBMITTED: "已提交", ClaimStatus.IN_REVIEW: "审核中", ClaimStatus.RETURNED: "已退回，请补充材料",
    ClaimStatus.APPROVED: "已批准，等待付款", ClaimStatus.PAYMENT_FAILED: "付款失败，请核对银行账户",
    ClaimStatus.PAID: "已付款", ClaimStatus.REJECTED: "不予补助", ClaimStatus.REVOKED: "已撤销",
}
UNDECIDED = (ClaimStatus.SUBMITTED, ClaimStatus.IN_REVIEW, ClaimStatus.RETURNED)


# --- the timeline (pure) --------------------------------------------------------------------------------------
def step_entry(step: ClaimStep, claim: Claim) -> TimelineEntry | None:
    where = LEVEL_NAME_ZH.get(step.level or "", "")
    match step.decision:
        case "submit":
            return TimelineEntry(kind=TimelineKind.SUBMITTED, at=step.at, level=step.level, text="申请已提交")
        case "approve" if step.level == claim.final_level:
            return TimelineEntry(kind=TimelineKind.APPROVED, at=step.at, level=step.level, amount=step.aid_amount,
                                 text=f"{where}审批通过，补助已批准")
        case "approve":
            return TimelineEntry(kind=TimelineKind.LEVEL_APPROVED, at=step.at, level=step.level,
                                 text=f"{where}审核通过，转上一级审批")
        case "return":
            return TimelineEntry(kind=TimelineKind.RETURNED, at=step.at, level=step.level, reason=step.reason,
                                 text=f"{where}退回，请补充材料")
        case "resubmit":
            return TimelineEntry(kind=TimelineKind.RESUBMITTED, at=step.at, level=step.level, text="已补充材料，重新提交")
        case "reject":
            return TimelineEntry(kind=TimelineKind.REJECTED, at=step.at, level=step.level, reason=step.reason,
                                 text=f"{where}决定不予补助")
        case "revoke":
            return TimelineEntry(kind=TimelineKind.REVOKED, at=step.at, level=step.level, reason=step.reason,
                                 text="互助中心撤销了该申请")
        case "adjust":
            return TimelineEntry(kind=TimelineKind.ADJUSTED, at=step.at, amount=step.aid_amount, reason=step.reason,
                                 text="补助金额重新核定")
        case "reverse":
            return TimelineEntry(kind=TimelineKind.REVERSED, at=step.at, reason=step.reason,
                                 text="医保部门冲销了该结算单")
    return None


def zh_day(at: datetime) -> str:
    day = at.astimezone(BEIJING).date()
    return f"{day.year}年{day.month}月{day.day}日"


def payment_entry(event: ClaimPaymentEvent) -> TimelineEntry:
    top_up = "（补发差额）" if event.adjustment_id else ""
    if event.kind == PaymentKind.INSTRUCTION:
        again = f"（第 {event.attempt} 次）" if event.attempt > 1 else ""
        return TimelineEntry(kind=TimelineKind.PAYMENT_INSTRUCTION, at=event.at, amount=event.amount,
                             text=f"已生成付款指令{again}{top_up}，等待银行转账")
    if event.kind == PaymentKind.RELEASED:
        return TimelineEntry(kind=TimelineKind.BATCH_RELEASED, at=event.at,
                             text=f"付款批次已放行{top_up}，{zh_day(event.at)}交银行转账")
    if event.kind == PaymentKind.PAID:
        return TimelineEntry(kind=TimelineKind.PAID, at=event.at, amount=event.amount,
                             text=f"补助已转入您的银行账户{top_up}")
    return TimelineEntry(kind=TimelineKind.PAYMENT_FAILED, at=event.at, reason=event.reason,
                         text=f"银行转账失败{top_up}：{event.reason or '原因未说明'}。请核对银行账户，财务将重新付款")


def timeline(claim: Claim, steps: list[ClaimStep], payments: list[ClaimPaymentEvent]) -> list[TimelineEntry]:
    entries = [e for e in (step_entry(s, claim) for s in steps) if e is not None]
    if claim.status == ClaimStatus.REJECTED and not any(s.decision in ("reject", "reverse") for s in steps):
        at = steps[0].at if steps else claim.created_at
        entries.append(TimelineEntry(kind=TimelineKind.REFUSED, at=at, reason=claim.rejection_detail,
                                     text="按规定不予受理"))
    entries.extend(payment_entry(p) for p in payments)
    order = {kind: i for i, kind in enumerate(TimelineKind)}
    return sorted(entries, key=lambda e: (e.at, order[e.kind]))


def money(value: Any) -> Decimal | None:
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return amount if amount.is_finite() else None


def day(value: Any) -> date | None:
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


def text_or_none(value: Any) -> str | None:
    return str(value)[:200] if value not in (None, "") else None


# --- the endpoints --------------------------------------------------------------------------------------------
def own_member(actor: Principal) -> str:
    if not actor.member_id:
        raise NotFound("该账号没有关联参互人员。", code="member_not_found")
    return actor.member_id


async def plans_of(session: AsyncSession, periods: set[str]) -> dict[tuple[str, str], Plan]:
    plans: dict[tuple[str, str], Plan] = {}
    for code in periods:
        rulebook = await rulebook_for(session, code)  # by its digest (repository's cache)
        if rulebook is not None:
            for plan in rulebook.plans:
                plans[(code, plan.code)] = plan
    return plans


def aid_of(claim: Claim, plan: Plan | None, adjustments: list[ClaimAdjustment]) -> MyAid:
    assessed = claim.assessed_aid
    if isinstance(plan, BandedPlan) and assessed is not None and claim.base is not None \
            and claim.cumulative_base is not None:
        explanation = explain_banded(plan, stay_base=claim.base, cumulative_base=claim.cumulative_base, aid=assessed)
    else:
        explanation = [claim.explanation] if claim.explanation else []
    for a in adjustments:
        explanation.append(f"{a.at.date()} 重新核定：{a.reason}，补助由 {a.aid_before} 元改为 {a.aid_after} 元。")
    return MyAid(amount=claim.aid_amount, assessed_amount=assessed, base=claim.base,
                 cumulative_base=claim.cumulative_base, explanation=explanation, detail=claim.explanation,
                 rulebook=claim.rulebook_code,
                 adjustments=[AidAdjustment(amount=a.amount, aid_before=a.aid_before, aid_after=a.aid_after,
                                            cause=a.cause, reason=a.reason, at=a.at) for a in adjustments])


@router.get("/me/claims", response_model=list[MyClaim], responses=problem_responses(403, 404))
async def my_claims(session: SessionDep, actor: Annotated[Principal, require_roles("member")],
                    limit: Annotated[int, Query(ge=1, le=MAX_ITEMS)] = MAX_ITEMS) -> list[MyClaim]:
    """The member's own claims, newest first, each with its timeline, its aid explained and what is missing."""
    member_id = own_member(actor)
    claims = list((await session.execute(select(Claim).where(Claim.member_id == member_id)
                                         .order_by(Claim.created_at.desc(), Claim.id).limit(limit))).scalars())
    ids = [c.id for c in claims]
    steps: dict[uuid.UUID, list[ClaimStep]] = {i: [] for i in ids}
    adjustments: dict[uuid.UUID, list[ClaimAdjustment]] = {i: [] for i in ids}
    documents: dict[uuid.UUID, set[str]] = {i: set() for i in ids}
    payments: dict[str, list[ClaimPaymentEvent]] = {str(i): [] for i in ids}
    if ids:
        for step in (await session.execute(select(ClaimStep).where(ClaimStep.claim_id.in_(ids))
                                           .order_by(ClaimStep.at))).scalars():
            steps[step.claim_id].append(step)
        for adj in (await session.execute(select(ClaimAdjustment).where(ClaimAdjustment.claim_id.in_(ids))
                                          .order_by(ClaimAdjustment.at))).scalars():
            adjustments[adj.claim_id].append(adj)
        for claim_id, doc_type in await session.execute(select(ClaimDocument.claim_id, ClaimDocument.doc_type)
                                                        .where(ClaimDocument.claim_id.in_(ids))):
            documents[claim_id].add(doc_type)
        for event in (await session.execute(select(ClaimPaymentEvent).where(
                ClaimPaymentEvent.claim_id.in_(list(payments))).order_by(ClaimPaymentEvent.at))).scalars():
            payments[event.claim_id].append(event)
    plans = await plans_of(session, {c.period for c in claims if c.period})
    out = []
    for c in claims:
        plan = plans.get((c.period or "", c.plan))
        status = ClaimStatus(c.status)
        missing = missing_documents(plan.kind if plan else "banded", documents[c.id]) if status in UNDECIDED else []
        out.append(MyClaim(
            claim_id=str(c.id), period=c.period, plan=c.plan, plan_name=plan.name if plan else c.plan, status=status,
            status_text=STATUS_TEXT[status], setl_id=c.setl_id, admission_date=c.admission_date,
            discharge_date=c.discharge_date, current_level=c.current_level, due_date=c.due_date,
            rejection=Rejection(code=c.rejection_code, detail=c.rejection_detail or "") if c.rejection_code else None,
            aid=aid_of(c, plan, adjustments[c.id]), timeline=timeline(c, steps[c.id], payments[str(c.id)]),
            documents=sorted(documents[c.id]), missing_documents=missing,
            missing_documents_text=[DOCUMENT_TYPES[m] for m in missing], created_at=c.created_at))
    return out


@router.get("/me/settlements", response_model=list[MySettlement], responses=problem_responses(403, 404))
async def my_settlements(session: SessionDep, actor: Annotated[Principal, require_roles("member")],
                         limit: Annotated[int, Query(ge=1, le=MAX_ITEMS)] = MAX_ITEMS) -> list[MySettlement]:
    """The bureau's records of the member's stays that no live claim uses yet (a reversed record, or one the
    bureau reversed, never shows), newest first: what the member can claim with one tap."""
    member_id = own_member(actor)
    certnos = list((await session.execute(select(Coverage.certno).where(Coverage.member_id == member_id)
                                          .distinct())).scalars())
    if not certnos:
        return []
    claimed = exists().where(Claim.setl_id == Settlement.setl_id, Claim.status != ClaimStatus.REJECTED)
    rows = (await session.execute(
        select(Settlement).where(Settlement.certno.in_(certnos), Settlement.is_reversal.is_(False),
                                 Settlement.reversed_at.is_(None), ~claimed)
        .order_by(Settlement.received_at.desc(), Settlement.setl_id).limit(limit))).scalars()
    out = []
    for s in rows:
        r = s.record
        out.append(MySettlement(
            setl_id=s.setl_id, mdtrt_id=s.mdtrt_id, med_type=str(r.get("med_type") or ""),
            hospital=text_or_none(r.get("fixmedins_name")), admission_date=day(r.get("begndate")),
            discharge_date=day(r.get("enddate")), settled_at=text_or_none(r.get("setl_time")),
            diagnosis_code=text_or_none(r.get("dscg_maindiag_code")),
            diagnosis_name=text_or_none(r.get("dscg_maindiag_name")),
            certno=mask_certno(s.certno) if s.certno else None,
            medfee_sumamt=money(r.get("medfee_sumamt")), fund_pay_sumamt=money(r.get("fund_pay_sumamt")),
            psn_part_amt=money(r.get("psn_part_amt")), fulamt_ownpay_amt=money(r.get("fulamt_ownpay_amt")),
            received_at=s.received_at))
    return out
