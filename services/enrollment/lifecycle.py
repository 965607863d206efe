"""A member's life after enrolment: withdrawal, a change of bank account or phone, corrections after the
window closed. Every change is audited (who, when, why, before and after) and announced by event."""

from __future__ import annotations

import uuid
from typing import Annotated, ClassVar, Self

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import select

from services.enrollment.domain.roster_rules import PHONE, luhn_ok
from services.enrollment.models import IDEMPOTENCY, MESSAGING, AuditEntry, Enrolment, Member, Org, Period
from services.enrollment.schemas import AuditOut, ContactOut, CorrectionOut, WithdrawalOut
from shared import idnumber
from shared.auth import CurrentUser, Principal, require_roles
from shared.deps import SessionDep
from shared.errors import Conflict, Forbidden, Invalid, NotFound
from shared.events import TOPIC_ENROLLMENT, CoverageEnded, MemberContactChanged, MemberDetailsCorrected
from shared.fields import SaneDate
from shared.idempotency import idempotent
from shared.masking import mask_account, mask_phone
from shared.messaging import publish
from shared.rulebook import period_rulebook
from shared.schemas import problem_responses

router = APIRouter(prefix="/api/v1", tags=["members"])


async def member_in_branch(session: SessionDep, member_id: uuid.UUID, actor: Principal) -> tuple[Member, Org]:
    member = await session.get(Member, member_id, with_for_update=True)
    if member is None:
        raise NotFound("参互人员不存在。", code="member_not_found")
    org = await session.get(Org, member.unit)
    assert org is not None
    actor.require_covers(org.path)
    return member, org


class WithdrawalIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    date: SaneDate
    reason: str = Field(min_length=1, max_length=500)


@router.post("/members/{member_id}/withdrawal", response_model=WithdrawalOut,
             responses=problem_responses(403, 404, 409))
@idempotent(IDEMPOTENCY)
async def withdraw(request: Request, member_id: uuid.UUID, body: WithdrawalIn, session: SessionDep,
                   actor: Annotated[Principal, require_roles("unit_agent", "admin")]) -> dict:
    """第十四条: leaving basic medical or critical-illness insurance ends aid rights from that day; the fee is
    not refunded. Every coverage still running on that day ends then."""
    member, _ = await member_in_branch(session, member_id, actor)
    # Every coverage not yet over on that day ends: one that has not begun yet ends before it begins.
    running = (await session.execute(select(Enrolment).where(
        Enrolment.member_id == member.id, Enrolment.status == "covered",
        Enrolment.covered_to >= body.date))).scalars().all()
    if not running:
        raise Conflict(f"{body.date} 该人员没有有效的参互保障。", code="no_coverage_on_date")
    for enrolment in running:
        enrolment.status, enrolment.withdrawn_on, enrolment.withdrawal_reason = "withdrawn", body.date, body.reason
        await publish(session, MESSAGING, TOPIC_ENROLLMENT, CoverageEnded(
            member_id=str(member.id), period=enrolment.period, ended_on=body.date, reason=body.reason))
    session.add(AuditEntry(actor=actor.username, action="member.withdrawal", subject=str(member.id),
                           detail={"date": body.date.isoformat(), "reason": body.reason,
                                   "periods": [e.period for e in running]}))
    return {"member_id": str(member.id), "withdrawn_on": body.date.isoformat(),
            "periods": [e.period for e in running], "refund": "0.00"}


class ContactFields(BaseModel):
    """The contact details a change may carry, checked alike whoever changes them (the unit agent's PATCH
    members, the member's own PATCH me): a bank account of digits with its bank's name, a mainland mobile."""

    model_config = ConfigDict(extra="forbid")
    bank_account: str | None = Field(default=None, min_length=10, max_length=30, pattern=r"^\d+$")
    bank_name: str | None = Field(default=None, min_length=2, max_length=100)
    phone: str | None = Field(default=None, pattern=PHONE.pattern)
    EITHER: ClassVar[tuple[str, ...]] = ("bank_account", "bank_name", "phone")

    @model_validator(mode="after")
    def _something(self) -> Self:
        if all(getattr(self, name) is None for name in self.EITHER):
            raise ValueError(f"{'、'.join(self.EITHER)} 至少填一项")
        if (self.bank_account is None) != (self.bank_name is None):
            raise ValueError("更换银行账号时必须同时填写开户银行")
        return self


class ContactIn(ContactFields):
    # Where notifications also send e-mail (kept by the notifications service only); "" removes it.
    email: str | None = Field(default=None, max_length=254, pattern=r"^$|^[^@\s]+@[^@\s]+\.[^@\s]+$")
    reason: str = Field(default="", max_length=500)
    EITHER: ClassVar[tuple[str, ...]] = ("bank_account", "bank_name", "phone", "email")


@router.patch("/members/{member_id}", response_model=ContactOut, responses=problem_responses(403, 404))
async def change_contact(member_id: uuid.UUID, body: ContactIn, session: SessionDep,
                         actor: Annotated[Principal, require_roles("unit_agent", "admin")]) -> dict:
    """A new bank account or phone, from the member's unit agent: audited, and announced so that payments
    sends the next attempt of a failed payment to the new account."""
    member, _ = await member_in_branch(session, member_id, actor)
    return await apply_contact_change(session, member, body, actor, email=body.email, reason=body.reason)


async def apply_contact_change(session: SessionDep, member: Member, body: ContactFields, actor: Principal, *,
                               email: str | None = None, reason: str = "") -> dict:
    """Write a checked change of a member's bank account and/or phone (``member`` locked by the caller): the
    audit row (before and after, masked), the member's new version, ``member.contact_changed`` (payments holds a
    new account, notifications tells the member at the phone they had), and the answer, masked, with a warning
    when the account fails the Luhn check (a passbook number may)."""
    previous_phone = member.phone
    before = {"bank_account": mask_account(member.bank_account), "bank_name": member.bank_name,
              "phone": mask_phone(member.phone)}
    if body.bank_account is not None and body.bank_name is not None:
        member.bank_account, member.bank_name = body.bank_account, body.bank_name
    if body.phone is not None:
        member.phone = body.phone
    after = {"bank_account": mask_account(member.bank_account), "bank_name": member.bank_name,
             "phone": mask_phone(member.phone)}
    session.add(AuditEntry(actor=actor.username, action="member.contact_change", subject=str(member.id),
                           detail={"before": before, "after": after, "reason": reason, "by_role": actor.role,
                                   **({"email_changed": True} if email is not None else {})}))
    member.version += 1
    await publish(session, MESSAGING, TOPIC_ENROLLMENT, MemberContactChanged(
        member_id=str(member.id), bank_account=member.bank_account, bank_name=member.bank_name,
        phone=member.phone, name=member.name, previous_phone=previous_phone, changed_by=actor.user_id,
        email=email, member_version=member.version))
    warnings = [] if luhn_ok(member.bank_account) else [
        {"loc": ["body", "bank_account"], "msg": "银行账号未通过 Luhn 校验，请核对（存折账号可忽略）。",
         "code": "bank_account_luhn"}]
    # Masked for everyone, the admin included: whoever changed it knows what they typed.
    return {"member_id": str(member.id), "bank_account": mask_account(member.bank_account),
            "bank_name": member.bank_name, "phone": mask_phone(member.phone), "warnings": warnings}


class CorrectionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    period: str
    reason: str = Field(min_length=4, max_length=1000)
    name: str | None = Field(default=None, min_length=1, max_length=100)
    certno: str | None = Field(default=None, min_length=15, max_length=18)  # a 15-digit one is converted
    sex: str | None = Field(default=None, pattern="^(male|female)$")
    member_type: str | None = Field(default=None, pattern="^(in_service|retired)$")


@router.post("/members/{member_id}/corrections", response_model=CorrectionOut,
             responses=problem_responses(403, 404, 409))
async def correct(member_id: uuid.UUID, body: CorrectionIn, session: SessionDep,
                  actor: Annotated[Principal, require_roles("admin")]) -> dict:
    """"参互数据一经确认，不作修改": once the enrolment window has closed, roster data changes only through
    this audited admin action, with a reason, old and new values kept in the audit log."""
    member, _ = await member_in_branch(session, member_id, actor)
    period = await session.get(Period, body.period)
    if period is None:
        raise NotFound(f"互助期 {body.period} 不存在。", code="period_not_found")
    enrolment = (await session.execute(select(Enrolment).where(
        Enrolment.member_id == member.id, Enrolment.period == body.period))).scalar_one_or_none()
    if enrolment is None:
        raise NotFound("该人员本期没有参互记录。", code="not_enrolled")
    changes = {k: v for k, v in body.model_dump(exclude={"period", "reason"}).items() if v is not None}
    if not changes:
        raise Invalid("没有要更正的内容。", errors=[{"loc": ["body"], "msg": "至少更正一项"}])
    if "certno" in changes:
        try:
            changes["certno"] = idnumber.parse(changes["certno"]).number
        except idnumber.IdNumberError as exc:
            raise Invalid(f"身份证号码无效：{exc.message}。", code="invalid_certno", errors=[
                {"loc": ["body", "certno"], "msg": exc.message, "code": "invalid_certno",
                 "reason": exc.problem.value}]) from None
        if (await session.execute(select(Member.id).where(Member.certno == changes["certno"],
                                                          Member.id != member.id))).first():
            raise Conflict("该身份证号码已属于另一名参互人员。", code="certno_taken")
    rulebook = period_rulebook(period.code, period.revision, period.rulebook)
    if "member_type" in changes and changes["member_type"] not in rulebook.enrolment.member_types:
        raise Invalid("本期不接受此人员类别。", code="member_type_not_allowed",
                      errors=[{"loc": ["body", "member_type"], "msg": "不在允许范围内"}])
    before = {k: getattr(member, k) for k in changes}
    for key, value in changes.items():
        setattr(member, key, value)
    member.version += 1
    await publish(session, MESSAGING, TOPIC_ENROLLMENT, MemberDetailsCorrected(
        member_id=str(member.id), name=member.name, certno=member.certno, sex=member.sex,
        member_type=member.member_type, member_version=member.version))
    session.add(AuditEntry(actor=actor.username, action="member.correction", subject=str(member.id), detail={
        "period": body.period, "reason": body.reason,
        "before": {k: (v[:6] + "…" if k == "certno" else v) for k, v in before.items()},
        "after": {k: (v[:6] + "…" if k == "certno" else v) for k, v in changes.items()}}))
    return {"member_id": str(member.id), "corrected": sorted(changes)}


@router.get("/members/{member_id}/audit", response_model=list[AuditOut], responses=problem_responses(403, 404))
async def member_audit(member_id: uuid.UUID, session: SessionDep, actor: CurrentUser) -> list[dict]:
    if actor.role not in ("admin", "unit_agent", "agency_reviewer", "office_reviewer", "centre_reviewer"):
        raise Forbidden("无权查看审计记录。", code="role_not_allowed")
    member, _ = await member_in_branch(session, member_id, actor)
    rows = (await session.execute(select(AuditEntry).where(AuditEntry.subject == str(member.id))
                                  .order_by(AuditEntry.at))).scalars()
    return [{"actor": a.actor, "action": a.action, "at": a.at.isoformat(), "detail": a.detail} for a in rows]
