"""Member accounts made by the unit agent (issue #13 item 4): a login for the app, linked to one member of the
agent's own unit (``member_id`` in every token it gets). One account per member; the password follows the policy
of logins.py; audited. (The member's own sign-up by ID number + phone + a code sent to that phone is not here.)"""

from __future__ import annotations

import asyncio
import uuid
from typing import Annotated

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from services.enrollment.logins import hasher, password_problems
from services.enrollment.models import AuditEntry, Member, User
from services.enrollment.staff_lists import unit_in_branch
from shared.auth import Principal, require_roles
from shared.deps import SessionDep
from shared.errors import Conflict, Invalid, NotFound

router = APIRouter(prefix="/api/v1", tags=["member accounts"])


async def check_new_account(session: SessionDep, request: Request, member: Member, username: str, password: str,
                            *, has_account: tuple[str, str]) -> None:
    """The checks of a new member account, made by the unit agent or by the member's own sign-up: the password
    policy of logins.py, one account per member (``has_account``: the message and the body field to name), a
    username not taken."""
    problems = password_problems(password, old="", username=username,
                                 min_length=request.app.state.settings.password_min_length)
    if problems:
        raise Invalid("密码不符合要求：" + "；".join(problems) + "。", code="password_too_weak",
                      errors=[{"loc": ["body", "password"], "msg": p} for p in problems])
    if (await session.execute(select(User.id).where(User.member_id == member.id))).first():
        message, field = has_account
        raise Conflict(message, code="member_has_account", errors=[{"loc": ["body", field], "msg": "已有账号"}])
    if (await session.execute(select(User.id).where(User.username == username))).first():
        raise Conflict(f"用户名 {username} 已存在。", code="username_taken",
                       errors=[{"loc": ["body", "username"], "msg": "用户名已存在"}])


class MemberAccountIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    member_id: uuid.UUID
    username: str = Field(min_length=3, max_length=100, pattern=r"^[A-Za-z0-9_.@-]+$")
    password: str = Field(min_length=1, max_length=200)


class MemberAccountOut(BaseModel):
    user_id: str
    username: str
    role: str
    member_id: str
    unit: str


async def add_account(session: SessionDep, member: Member, username: str, password: str, *, by: str,
                      action: str) -> MemberAccountOut:
    """Store a checked new account (``check_new_account``) linked to the member, in the member's unit, audited."""
    user = User(username=username, password_hash=await asyncio.to_thread(hasher.hash, password),
                role="member", org=member.unit, member_id=member.id)
    session.add(user)
    session.add(AuditEntry(actor=by, action=action, subject=str(member.id),
                           detail={"username": username, "unit": member.unit}))
    await session.flush()
    return MemberAccountOut(user_id=str(user.id), username=user.username, role="member", member_id=str(member.id),
                            unit=member.unit)


@router.post("/units/{unit}/member-accounts", status_code=201, response_model=MemberAccountOut)
async def create_member_account(unit: str, body: MemberAccountIn, request: Request, session: SessionDep,
                                actor: Annotated[Principal, require_roles("unit_agent", "admin")]
                                ) -> MemberAccountOut:
    org = await unit_in_branch(session, unit, actor)
    member = await session.get(Member, body.member_id)
    if member is None or member.unit != org.code:
        raise NotFound("本单位没有这名参互人员。", code="member_not_found",
                       errors=[{"loc": ["body", "member_id"], "msg": "不是本单位的参互人员"}])
    await check_new_account(session, request, member, body.username, body.password,
                            has_account=("这名参互人员已有账号。", "member_id"))
    return await add_account(session, member, body.username, body.password, by=actor.username,
                             action="member_account.create")
