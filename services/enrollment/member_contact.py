"""The member changes their own phone and bank account in the app (issue #13 item 1, ``PATCH /api/v1/me``).

Two steps, the change confirmed by a code sent by SMS to the phone on file BEFORE the change (the one the member
is known by; a stolen password alone changes nothing):

- ``POST /api/v1/me/contact-change {phone?, bank_account?, bank_name?}``: the change is checked as the unit
  agent's is (lifecycle.ContactFields: a mainland mobile, an account of 10-30 digits with its bank's name), then
  a 6-digit code goes to the current phone (event ``member.contact_code``; notifications sends it by SMS only,
  never in a feed or by e-mail); 202. The code is bound to that change: it is kept as an HMAC of the request,
  the code and the new details, so it confirms only what was asked. ``CONTACT_REQUESTS_PER_HOUR`` requests
  an hour per member, then 429 with Retry-After.
- ``PATCH /api/v1/me {phone?, bank_account?, bank_name?, code}``: the same details with the code. No code: 422
  ``code_required``; a wrong, expired, burnt (``CONTACT_MAX_ATTEMPTS`` wrong tries) or used code, or details
  other than those the code was sent for: 422 ``code_invalid``. Then the change is written as the agent's is
  (lifecycle.apply_contact_change: audited, ``member.contact_changed`` so payments holds a new account and
  notifications tells the member at the previous phone too).
"""

from __future__ import annotations

import hmac
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from sqlalchemy import String, func, select, update
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from services.enrollment.lifecycle import ContactFields, apply_contact_change
from services.enrollment.member_app import own_member_id
from services.enrollment.member_signup import CodeRequest, code_hash, count_attempt, key, refuse_over_limit
from services.enrollment.models import MESSAGING, Base, Member
from services.enrollment.schemas import ContactOut
from shared.auth import Principal, require_roles
from shared.deps import SessionDep
from shared.errors import Conflict, Invalid, NotFound
from shared.events import TOPIC_ENROLLMENT, MemberContactCode
from shared.masking import mask_phone
from shared.messaging import publish
from shared.schemas import problem_responses

router = APIRouter(prefix="/api/v1", tags=["members"])

CONTACT_REQUESTS_PER_HOUR = 5  # codes a member may ask for in an hour
CONTACT_CODE_TTL = timedelta(minutes=10)
CONTACT_MAX_ATTEMPTS = 5  # wrong codes before a code is burnt


class ContactChangeRequest(CodeRequest, Base):
    __tablename__ = "contact_change_requests"
    member_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), index=True)
    phone_key: Mapped[str] = mapped_column(String(64))  # the SHA-256 key of the phone the code went to


class ContactCodeSent(BaseModel):
    status: str = Field(description="always sent")
    message: str
    phone: str = Field(description="the phone the code went to, masked")
    expires_in: int = Field(description="seconds a code lives")


class MyContactIn(ContactFields):
    code: str | None = Field(default=None, max_length=20, description="the 6-digit code sent by POST /me/contact-change")


def change_code_hash(secret: str, request_id: uuid.UUID, code: str, change: ContactFields) -> str:
    """The code bound to the change it was sent for (the details as the member typed them)."""
    details = "|".join(getattr(change, name) or "" for name in ("phone", "bank_account", "bank_name"))
    return code_hash(secret, request_id, f"{code}|{details}")


async def me_locked(session: SessionDep, actor: Principal) -> Member:
    """The caller's own member row, locked: one member's code requests and changes go one at a time."""
    member = await session.get(Member, own_member_id(actor), with_for_update=True)
    if member is None:
        raise NotFound("参互人员不存在。", code="member_not_found")
    return member


CODE_REQUIRED = "请先获取短信验证码，再提交修改。"
INVALID_CODE = "验证码错误、已过期，或与申请修改的内容不一致，请重新获取。"


@router.post("/me/contact-change", status_code=202, response_model=ContactCodeSent,
             responses=problem_responses(403, 404, 409, 422, 429))
async def request_contact_code(body: ContactFields, request: Request, session: SessionDep,
                               actor: Annotated[Principal, require_roles("member")]) -> ContactCodeSent:
    """Ask to change one's phone and/or bank account: a code goes by SMS to the phone on file now."""
    member = await me_locked(session, actor)  # the lock also counts one member's requests one at a time
    if not member.phone:
        raise Conflict("登记的手机号为空，无法发送验证码，请联系本单位工会经办人修改。", code="no_phone_on_file")
    since = datetime.now(UTC) - timedelta(hours=1)
    recent = list((await session.execute(
        select(ContactChangeRequest.created_at).where(ContactChangeRequest.member_id == member.id,
                                                      ContactChangeRequest.created_at > since)
        .order_by(ContactChangeRequest.created_at.desc()).limit(CONTACT_REQUESTS_PER_HOUR))).scalars())
    refuse_over_limit(recent, CONTACT_REQUESTS_PER_HOUR, code="contact_code_too_many", field="phone")
    code = f"{secrets.randbelow(10**6):06d}"
    row = ContactChangeRequest(id=uuid.uuid4(), member_id=member.id, phone_key=key(member.phone),
                               expires_at=datetime.now(UTC) + CONTACT_CODE_TTL)
    row.code_hash = change_code_hash(request.app.state.settings.jwt_secret, row.id, code, body)
    session.add(row)
    await publish(session, MESSAGING, TOPIC_ENROLLMENT, MemberContactCode(
        member_id=str(member.id), phone=member.phone, code=code, expires_at=row.expires_at))
    return ContactCodeSent(status="sent", phone=mask_phone(member.phone),
                           expires_in=int(CONTACT_CODE_TTL.total_seconds()),
                           message="验证码已通过短信发送到您登记的手机，10 分钟内有效。")


@router.patch("/me", response_model=ContactOut, responses=problem_responses(403, 404, 422))
async def change_my_contact(body: MyContactIn, request: Request, session: SessionDep,
                            actor: Annotated[Principal, require_roles("member")]) -> dict:
    """Change one's own phone and/or bank account with the code sent to the phone on file: audited, announced
    as the unit agent's change is (payments holds a new account; the member is told at the previous phone)."""
    if body.code is None:
        raise Invalid(CODE_REQUIRED, code="code_required", errors=[
            {"loc": ["body", "code"], "msg": CODE_REQUIRED, "code": "code_required"}])
    member = await me_locked(session, actor)
    wrong = Invalid(INVALID_CODE, code="code_invalid", errors=[
        {"loc": ["body", "code"], "msg": INVALID_CODE, "code": "code_invalid"}])
    row = (await session.execute(
        select(ContactChangeRequest).where(ContactChangeRequest.member_id == member.id,
                                           ContactChangeRequest.used_at.is_(None),
                                           ContactChangeRequest.expires_at > datetime.now(UTC))
        .order_by(ContactChangeRequest.created_at.desc()).limit(1))).scalar_one_or_none()
    if row is None:
        raise wrong
    attempts = await count_attempt(request, ContactChangeRequest, row.id)
    good = row.code_hash is not None and attempts <= CONTACT_MAX_ATTEMPTS and hmac.compare_digest(
        row.code_hash, change_code_hash(request.app.state.settings.jwt_secret, row.id, body.code, body))
    if not good:
        raise wrong
    used = (await session.execute(update(ContactChangeRequest).where(
        ContactChangeRequest.id == row.id, ContactChangeRequest.used_at.is_(None))
        .values(used_at=func.now()).returning(ContactChangeRequest.id))).first()
    if used is None:  # the same code sent twice at once: the first one wins
        raise wrong
    return await apply_contact_change(session, member, body, actor, reason="会员本人在 App 修改（短信验证码）")
