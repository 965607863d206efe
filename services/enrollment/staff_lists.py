"""Staff lists of a unit (issue #10 item 3, issue #13 item 6): its members and its rosters, a page at a time.

- ``GET /api/v1/units/{unit}/members?period=&q=&limit=&cursor=``: the unit's members (with ``period``: those
  enrolled through the unit in that period, with their enrolment's status and cover), ordered by name; ``q`` is
  part of a name, or the last 4-6 characters of an ID number. Personal data masked, as everywhere.
- ``GET /api/v1/units/{unit}/rosters?period=&limit=&cursor=``: the unit's rosters, newest first.

Keyset pagination: ``next_cursor`` is an opaque token of the last row's sort key; the next page starts after
it, so a page costs the same however deep it is and rows added meanwhile are neither skipped nor repeated.
Scope: the unit must lie in the caller's branch, compared by whole path segments (shared/scope.py via
``Principal.covers``); anyone else, and a member or the bureau, is refused.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel
from sqlalchemy import func, select, tuple_

from services.enrollment.models import Enrolment, Member, Org, Roster
from shared.auth import Principal, require_roles
from shared.deps import SessionDep
from shared.errors import Invalid, NotFound
from shared.masking import mask_certno, mask_phone
from shared.schemas import MoneyOut, Page, problem_responses
from shared.vocab import EnrolmentStatus, OrgLevel, RosterStatus

router = APIRouter(prefix="/api/v1", tags=["staff lists"])
STAFF = ("admin", "centre_reviewer", "office_reviewer", "agency_reviewer", "unit_agent", "finance")
ID_TAIL = re.compile(r"^\d{3,5}[\dXx]$")


class MemberRow(BaseModel):
    member_id: str
    name: str
    certno: str  # masked: 530102********0217
    phone: str  # masked: 138****3456
    sex: str
    member_type: str
    unit: str
    period: str | None = None
    status: EnrolmentStatus | None = None  # the enrolment's status in ``period``
    covered_from: date | None = None
    covered_to: date | None = None



class RosterRow(BaseModel):
    roster_id: str
    period: str
    unit: str
    status: RosterStatus
    members: int
    fee_total: MoneyOut
    paid_total: MoneyOut
    submitted_by: str
    created_at: datetime



def encode_cursor(*key: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(key), ensure_ascii=False).encode()).decode().rstrip("=")


def bad_cursor() -> Invalid:
    return Invalid("cursor 无效：请使用上一页返回的 next_cursor。", code="bad_cursor",
                   errors=[{"loc": ["query", "cursor"], "msg": "无效的分页游标"}])


def decode_cursor(cursor: str, size: int) -> list[str]:
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except ValueError:
        raise bad_cursor() from None
    if not (isinstance(key, list) and len(key) == size and all(isinstance(k, str) for k in key)):
        raise bad_cursor()
    return key


async def unit_in_branch(session: SessionDep, unit: str, actor: Principal) -> Org:
    org = await session.get(Org, unit)
    if org is None or org.level != OrgLevel.UNIT:
        raise NotFound("基层工会不存在。", code="unit_not_found")
    actor.require_covers(org.path)
    return org


Limit = Annotated[int, Query(ge=1, le=200)]
Cursor = Annotated[str | None, Query(max_length=400)]


MemberPage = Page[MemberRow]
RosterPage = Page[RosterRow]


@router.get("/units/{unit}/members", response_model=MemberPage, responses=problem_responses(403, 404))
async def unit_members(unit: str, session: SessionDep, actor: Annotated[Principal, require_roles(*STAFF)],
                       period: Annotated[str | None, Query(max_length=50)] = None,
                       q: Annotated[str | None, Query(min_length=1, max_length=50)] = None,
                       limit: Limit = 50, cursor: Cursor = None) -> MemberPage:
    org = await unit_in_branch(session, unit, actor)
    stmt: Any  # Select of (Member, Enrolment) or of Member
    if period:
        stmt = (select(Member, Enrolment).join(Enrolment, Enrolment.member_id == Member.id)
                .where(Enrolment.period == period, Enrolment.unit == org.code))
    else:
        stmt = select(Member).where(Member.unit == org.code)
    if q:
        q = q.strip()
        if ID_TAIL.match(q):  # the last digits of an ID number (a final X in either case)
            stmt = stmt.where(func.right(Member.certno, len(q)) == q.upper())
        else:  # part of a name, matched as plain text (never a LIKE pattern)
            stmt = stmt.where(func.strpos(Member.name, q) > 0)
    if cursor:
        name, member_id = decode_cursor(cursor, 2)
        try:
            after = uuid.UUID(member_id)
        except ValueError:
            raise bad_cursor() from None
        stmt = stmt.where(tuple_(Member.name, Member.id) > tuple_(name, after))
    rows = (await session.execute(stmt.order_by(Member.name, Member.id).limit(limit + 1))).all()
    items = []
    for row in rows[:limit]:
        member: Member = row[0]
        enrolment: Enrolment | None = row[1] if period else None
        items.append(MemberRow(
            member_id=str(member.id), name=member.name, certno=mask_certno(member.certno),
            phone=mask_phone(member.phone), sex=member.sex, member_type=member.member_type, unit=member.unit,
            period=enrolment.period if enrolment else None,
            status=EnrolmentStatus(enrolment.status) if enrolment else None,
            covered_from=enrolment.covered_from if enrolment else None,
            covered_to=enrolment.covered_to if enrolment else None))
    last = rows[limit - 1][0] if len(rows) > limit else None
    return MemberPage(items=items, next_cursor=encode_cursor(last.name, str(last.id)) if last else None)


@router.get("/units/{unit}/rosters", response_model=RosterPage, responses=problem_responses(403, 404))
async def unit_rosters(unit: str, session: SessionDep, actor: Annotated[Principal, require_roles(*STAFF)],
                       period: Annotated[str | None, Query(max_length=50)] = None,
                       limit: Limit = 50, cursor: Cursor = None) -> RosterPage:
    org = await unit_in_branch(session, unit, actor)
    stmt = select(Roster).where(Roster.unit == org.code)
    if period:
        stmt = stmt.where(Roster.period == period)
    if cursor:
        created, roster_id = decode_cursor(cursor, 2)
        try:
            key = (datetime.fromisoformat(created), uuid.UUID(roster_id))
        except ValueError:
            raise bad_cursor() from None
        stmt = stmt.where(tuple_(Roster.created_at, Roster.id) < tuple_(*key))
    rows = list((await session.execute(stmt.order_by(Roster.created_at.desc(), Roster.id.desc())
                                       .limit(limit + 1))).scalars())
    items = [RosterRow(roster_id=str(r.id), period=r.period, unit=r.unit, status=RosterStatus(r.status),
                       members=r.member_count, fee_total=r.fee_total, paid_total=r.paid_total,
                       submitted_by=r.submitted_by, created_at=r.created_at) for r in rows[:limit]]
    last = rows[limit - 1] if len(rows) > limit else None
    return RosterPage(items=items, next_cursor=encode_cursor(last.created_at.isoformat(), str(last.id)) if last
                      else None)
