"""A member's own sign-up in the app (issue #13 item 4): ID number + phone, a code sent by SMS to that phone, then
the account, linked to the member.

- ``POST /api/v1/member-accounts/signup {certno, phone}``: when a member on a roster has this ID number and this
  phone, a 6-digit code goes to that phone (event ``member.signup_code``; notifications sends it by SMS only).
  The answer is the same whether or not anyone matched (202, same body), so nobody learns who is a member;
  every request counts towards the limit of its ID number and of its phone (``SIGNUP_REQUESTS_PER_HOUR`` each,
  then 429 with Retry-After), matched or not.
- ``POST /api/v1/member-accounts/signup/confirm {certno, phone, code, username, password}``: the newest live code
  of that ID number and phone; ``SIGNUP_MAX_ATTEMPTS`` wrong codes burn it. A wrong code, an expired one and a
  request that matched nobody get the same 422. Then the account is made as the unit agent's would be (one per
  member, the password policy of logins.py) and audited.

Neither the ID number nor the phone is stored here: the table keeps their SHA-256 keys; the code is kept as an
HMAC under the service's secret.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import uuid
from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import DateTime, Integer, String, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from services.enrollment.logins import Locked
from services.enrollment.member_accounts import MemberAccountOut, add_account, check_new_account
from services.enrollment.models import MESSAGING, Base, Enrolment, Member
from shared import idnumber
from shared.db import utcnow
from shared.deps import SessionDep
from shared.errors import Invalid
from shared.events import TOPIC_ENROLLMENT, MemberSignupCode
from shared.messaging import publish
from shared.schemas import problem_responses

router = APIRouter(prefix="/api/v1", tags=["member accounts"])

SIGNUP_REQUESTS_PER_HOUR = 5  # per ID number and per phone, matched or not
SIGNUP_CODE_TTL = timedelta(minutes=10)
SIGNUP_MAX_ATTEMPTS = 5  # wrong codes before a code is burnt
PHONE = r"^1\d{10}$"  # a mainland mobile number: the code goes by SMS


class CodeRequest:
    """A code sent by SMS and what became of it (a mixin: sign-up here, a contact change in member_contact.py):
    the code only as an HMAC, the wrong tries counted, when it expires and when it was used."""

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    code_hash: Mapped[str | None] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), default=utcnow)


class SignupRequest(CodeRequest, Base):
    __tablename__ = "signup_requests"
    certno_key: Mapped[str] = mapped_column(String(64))
    phone_key: Mapped[str] = mapped_column(String(64))
    member_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))  # None: matched nobody


class SignupIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    certno: str = Field(min_length=15, max_length=18)
    phone: str = Field(pattern=PHONE)


class SignupConfirmIn(SignupIn):
    code: str = Field(pattern=r"^\d{6}$")
    username: str = Field(min_length=3, max_length=100, pattern=r"^[A-Za-z0-9_.@-]+$")
    password: str = Field(min_length=1, max_length=200)


class SignupSent(BaseModel):
    status: str = Field(description="always sent_if_matched: the answer does not tell whether anyone matched")
    message: str
    expires_in: int = Field(description="seconds a code lives")


def key(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def code_hash(secret: str, request_id: uuid.UUID, code: str) -> str:
    return hmac.new(secret.encode(), f"{request_id}:{code}".encode(), hashlib.sha256).hexdigest()


def refuse_over_limit(recent: list[datetime], per_hour: int, *, code: str, field: str) -> None:
    """429 with Retry-After once ``per_hour`` requests (``recent``: their times, newest first, at most
    ``per_hour`` of the last hour) were made: the wait is until the oldest of them is an hour old."""
    if len(recent) < per_hour:
        return
    seconds = max(1, math.ceil((recent[-1] + timedelta(hours=1) - datetime.now(UTC)).total_seconds()))
    raise Locked(f"验证码请求过于频繁，请 {math.ceil(seconds / 60)} 分钟后再试。", code=code, title="请求过于频繁",
                 errors=[{"loc": ["body", field], "msg": "请求过于频繁", "retry_after": seconds}],
                 headers={"Retry-After": str(seconds)})


async def refuse_if_too_many(session: SessionDep, certno_key: str, phone_key: str) -> None:
    since = datetime.now(UTC) - timedelta(hours=1)
    recent = list((await session.execute(
        select(SignupRequest.created_at).where(or_(SignupRequest.certno_key == certno_key,
                                                   SignupRequest.phone_key == phone_key),
                                               SignupRequest.created_at > since)
        .order_by(SignupRequest.created_at.desc()).limit(SIGNUP_REQUESTS_PER_HOUR))).scalars())
    refuse_over_limit(recent, SIGNUP_REQUESTS_PER_HOUR, code="signup_too_many", field="phone")


@router.post("/member-accounts/signup", status_code=202, response_model=SignupSent,
             responses=problem_responses(422, 429))
async def request_signup_code(body: SignupIn, request: Request, session: SessionDep) -> SignupSent:
    """Send a sign-up code to the phone if a member on a roster has this ID number and this phone."""
    certno = idnumber.lookup_form(body.certno)
    certno_key, phone_key = key(certno), key(body.phone)
    # One request at a time per ID number: the limit is counted, not raced.
    await session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": "signup:" + certno_key})
    await refuse_if_too_many(session, certno_key, phone_key)
    member = (await session.execute(select(Member).where(Member.certno == certno))).scalar_one_or_none()
    on_roster = member is not None and member.phone == body.phone and (await session.execute(
        select(Enrolment.period).where(Enrolment.member_id == member.id).limit(1))).first() is not None
    row = SignupRequest(id=uuid.uuid4(), certno_key=certno_key, phone_key=phone_key,
                        expires_at=datetime.now(UTC) + SIGNUP_CODE_TTL)
    if on_roster and member is not None:
        code = f"{secrets.randbelow(10**6):06d}"
        row.member_id, row.code_hash = member.id, code_hash(request.app.state.settings.jwt_secret, row.id, code)
        await publish(session, MESSAGING, TOPIC_ENROLLMENT, MemberSignupCode(
            member_id=str(member.id), phone=member.phone, code=code, expires_at=row.expires_at))
    session.add(row)
    return SignupSent(status="sent_if_matched", expires_in=int(SIGNUP_CODE_TTL.total_seconds()),
                      message="如身份证号和手机号与参互名单一致，验证码已通过短信发送到该手机，10 分钟内有效。")


async def count_attempt(request: Request, model: type[CodeRequest], row_id: uuid.UUID) -> int:
    """Every try counts, in its own committed transaction (the request's is rolled back with a 422), before the
    code is compared: concurrent guesses cannot share one count."""
    async with request.app.state.db.transaction() as session:
        return int((await session.execute(update(model).where(model.id == row_id)
                                          .values(attempts=model.attempts + 1)
                                          .returning(model.attempts))).scalar_one())


INVALID_CODE = "验证码错误或已过期，请重新获取。"


@router.post("/member-accounts/signup/confirm", status_code=201, response_model=MemberAccountOut,
             responses=problem_responses(409, 422))
async def confirm_signup(body: SignupConfirmIn, request: Request, session: SessionDep) -> MemberAccountOut:
    """With the code from the SMS: the member's account, linked to them, in their unit."""
    certno_key, phone_key = key(idnumber.lookup_form(body.certno)), key(body.phone)
    row = (await session.execute(
        select(SignupRequest).where(SignupRequest.certno_key == certno_key, SignupRequest.phone_key == phone_key,
                                    SignupRequest.used_at.is_(None), SignupRequest.expires_at > datetime.now(UTC))
        .order_by(SignupRequest.created_at.desc()).limit(1))).scalar_one_or_none()
    wrong = Invalid(INVALID_CODE, code="signup_code_invalid", errors=[{"loc": ["body", "code"], "msg": INVALID_CODE}])
    if row is None:
        raise wrong
    attempts = await count_attempt(request, SignupRequest, row.id)
    good = row.code_hash is not None and attempts <= SIGNUP_MAX_ATTEMPTS and hmac.compare_digest(
        row.code_hash, code_hash(request.app.state.settings.jwt_secret, row.id, body.code))
    if not good or row.member_id is None:
        raise wrong
    member = await session.get(Member, row.member_id)
    assert member is not None
    await check_new_account(session, request, member, body.username, body.password,
                            has_account=("您已有账号，请直接登录；忘记密码请联系本单位工会。", "certno"))
    used = (await session.execute(update(SignupRequest).where(SignupRequest.id == row.id,
                                                              SignupRequest.used_at.is_(None))
                                  .values(used_at=func.now()).returning(SignupRequest.id))).first()
    if used is None:  # the same code confirmed twice at once: the first one wins
        raise wrong
    return await add_account(session, member, body.username, body.password, by=body.username,
                             action="member_account.signup")
