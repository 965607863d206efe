"""Login, lockout and password change (API.md "POST /api/v1/auth/token"; issue 9 §6).

- A username with ``login_max_failures`` (10) wrong passwords within ``login_window_seconds`` (15 minutes) is
  locked: every login for it, the right password included, gets 429 with ``Retry-After`` (seconds until the
  oldest of those failures leaves the window). The lock is written to the audit log once, when it starts.
  Failures are counted per username whether or not the account exists, and a success clears them.
- An unknown username is verified against a dummy argon2 hash, so it costs as long as a wrong password and
  the answer's timing does not tell who has an account.
- Access tokens live ``token_ttl_seconds`` (30 minutes by default); then the client logs in again.
- ``POST /api/v1/auth/password`` changes the caller's own password: the old one (a wrong one counts as a
  failed login), a new one of at least ``password_min_length`` (10) characters that is not the old one, does
  not contain the username and is not one character repeated. Audited.
"""

from __future__ import annotations

import asyncio
import math
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import APIRouter, Form, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import delete, func, select, text

from services.enrollment.models import AuditEntry, LoginFailure, User
from services.enrollment.schemas import PasswordChangedOut, TokenOut
from services.enrollment.service import principal_of
from shared.auth import CurrentUser, issue_token
from shared.deps import SessionDep
from shared.errors import Forbidden, Invalid, Problem, Unauthorized
from shared.schemas import problem_responses

router = APIRouter(prefix="/api/v1", tags=["auth"])
hasher = PasswordHasher()
# Verified against when the username is unknown: the same work as a wrong password for a real account.
DUMMY_HASH = hasher.hash(uuid.uuid4().hex)


class Locked(Problem):
    status, code, title = 429, "login_locked", "登录尝试过多"


async def _verify(password_hash: str, password: str) -> bool:
    def check() -> bool:
        try:
            return hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False
    return await asyncio.to_thread(check)  # argon2 takes tens of milliseconds: off the event loop


async def _locked_for(request: Request, username: str) -> int:
    """Seconds the username stays locked (0: not locked)."""
    settings = request.app.state.settings
    now = datetime.now(UTC)
    async with request.app.state.db.transaction() as session:
        recent = list((await session.execute(
            select(LoginFailure.at).where(LoginFailure.username == username,
                                          LoginFailure.at > now - timedelta(seconds=settings.login_window_seconds))
            .order_by(LoginFailure.at.desc()).limit(settings.login_max_failures))).scalars())
    if len(recent) < settings.login_max_failures:
        return 0
    until = recent[-1] + timedelta(seconds=settings.login_window_seconds)
    return max(1, math.ceil((until - now).total_seconds()))


async def _record_failure(request: Request, username: str) -> None:
    """One more failure, in its own transaction (the request's is rolled back with the 401); the failure that
    starts a lock is audited."""
    settings = request.app.state.settings
    async with request.app.state.db.transaction() as session:
        await session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:u))"), {"u": username})
        session.add(LoginFailure(username=username))
        await session.flush()
        count = (await session.execute(select(func.count()).select_from(LoginFailure).where(
            LoginFailure.username == username,
            LoginFailure.at > func.now() - timedelta(seconds=settings.login_window_seconds)))).scalar_one()
        if count == settings.login_max_failures:
            session.add(AuditEntry(actor=username, action="auth.locked", subject=username, detail={
                "failures": count, "window_seconds": settings.login_window_seconds}))


async def _refuse_if_locked(request: Request, username: str) -> None:
    seconds = await _locked_for(request, username)
    if seconds:
        raise Locked(f"该用户名连续输错密码次数过多，请 {math.ceil(seconds / 60)} 分钟后再试。",
                     errors=[{"loc": ["body", "username"], "msg": "已暂时锁定", "retry_after": seconds}],
                     headers={"Retry-After": str(seconds)})


@router.post("/auth/token", response_model=TokenOut, responses=problem_responses(401, 403, 422, 429))
async def login(
    request: Request, session: SessionDep, username: Annotated[str, Form(max_length=200)],
    password: Annotated[str, Form(max_length=200)],
) -> dict[str, Any]:
    username = username[:100]
    await _refuse_if_locked(request, username)
    user = (await session.execute(select(User).where(User.username == username))).scalar_one_or_none()
    ok = await _verify(user.password_hash if user is not None else DUMMY_HASH, password)
    if user is None or not ok:
        await _record_failure(request, username)
        raise Unauthorized("用户名或密码错误。", code="bad_credentials")
    await session.execute(delete(LoginFailure).where(LoginFailure.username == username))
    principal = await principal_of(session, user)
    settings = request.app.state.settings
    token = issue_token(principal, settings.jwt_secret, settings.token_ttl_seconds, settings.jwt_issuer)
    return {"access_token": token, "token_type": "bearer", "expires_in": settings.token_ttl_seconds,
            "role": user.role, "org": user.org, "member_id": principal.member_id}


class PasswordChangeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    old_password: str = Field(min_length=1, max_length=200)
    new_password: str = Field(min_length=1, max_length=200)


def password_problems(new: str, *, old: str, username: str, min_length: int) -> list[str]:
    """The password policy: what is wrong with ``new`` (Chinese, for the person), empty when it is fine."""
    problems = []
    if len(new) < min_length:
        problems.append(f"新密码至少 {min_length} 个字符")
    if new == old:
        problems.append("新密码不能与旧密码相同")
    if username and username.lower() in new.lower():
        problems.append("新密码不能包含用户名")
    if len(set(new)) <= 1:
        problems.append("新密码不能是同一个字符的重复")
    return problems


@router.post("/auth/password", response_model=PasswordChangedOut, responses=problem_responses(401, 403, 422))
async def change_password(request: Request, body: PasswordChangeIn, session: SessionDep,
                          actor: CurrentUser) -> dict[str, Any]:
    """The caller changes their own password (every role)."""
    try:
        user_id = uuid.UUID(actor.user_id)
    except ValueError:
        user_id = None
    user = await session.get(User, user_id, with_for_update=True) if user_id else None
    if user is None:
        raise Unauthorized("账号不存在，请重新登录。", code="invalid_token")
    await _refuse_if_locked(request, user.username)
    if not await _verify(user.password_hash, body.old_password):
        await _record_failure(request, user.username)
        raise Forbidden("旧密码不正确。", code="bad_credentials",
                        errors=[{"loc": ["body", "old_password"], "msg": "旧密码不正确"}])
    settings = request.app.state.settings
    problems = password_problems(body.new_password, old=body.old_password, username=user.username,
                                 min_length=settings.password_min_length)
    if problems:
        raise Invalid("新密码不符合要求：" + "；".join(problems) + "。", code="password_too_weak",
                      errors=[{"loc": ["body", "new_password"], "msg": p} for p in problems])
    user.password_hash = await asyncio.to_thread(hasher.hash, body.new_password)
    session.add(AuditEntry(actor=user.username, action="auth.password_change", subject=user.username, detail={}))
    return {"username": user.username, "changed": True}
