"""Claims past their due date (第十条: 5 working days): the list for reviewers and the sweeper that announces
them once per (claim, level, kind) with ClaimOverdue: a ``reminder`` to the level's own organisation when the
due date has passed, an ``escalation`` to the organisation one level up ``ESCALATE_AFTER`` working days later.

Timers are rows: the due date lives on the claim, the memory of a notice in ``overdue_notices``. The sweeper
locks each overdue claim (``FOR UPDATE SKIP LOCKED``) and re-checks it under the lock, so an approval and a
timeout never both win: a claim being decided is skipped and looked at again on the next sweep.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.claims.calendar import load_calendar
from services.claims.domain.approval import day_of
from services.claims.domain.routing import LEVELS
from services.claims.domain.workdays import WorkCalendar, add_working_days, working_days_between
from services.claims.models import MESSAGING, Claim, OverdueNotice
from services.claims.schemas import OverdueItemOut
from shared.auth import REVIEWER_LEVEL, Principal, require_roles
from shared.deps import SessionDep
from shared.events import TOPIC_CLAIMS, ClaimOverdue
from shared.messaging import publish
from shared.money import format_money
from shared.schemas import problem_responses
from shared.scope import array_in_branch
from shared.vocab import ORG_LEVELS, ClaimStatus, OrgLevel, Role

router = APIRouter(prefix="/api/v1", tags=["claims"])

ESCALATE_AFTER = 2  # working days after the due date before the level above is told


def org_at(unit_path: list[str], level: str) -> str:
    """The organisation reviewing at ``level`` for a claim of this unit."""
    if not unit_path:
        return ""
    return unit_path[min((ORG_LEVELS.index(OrgLevel(level)) if level in ORG_LEVELS else 0), max(len(unit_path) - 2, 0))]


def level_above(level: str) -> str:
    index = LEVELS.index(level) if level in LEVELS else len(LEVELS) - 1
    return LEVELS[min(index + 1, len(LEVELS) - 1)]


def notices_due(due_date: date, today: date, calendar: WorkCalendar | None,
                escalate_after: int = ESCALATE_AFTER) -> list[str]:
    """Which notices a claim due on ``due_date`` has earned by ``today`` (pure)."""
    kinds = []
    if today > due_date:
        kinds.append("reminder")
        if today > add_working_days(due_date, escalate_after, calendar).due:
            kinds.append("escalation")
    return kinds


async def sweep_overdue(session: AsyncSession, today: date | None = None, limit: int = 500) -> int:
    """Publish every ClaimOverdue not yet sent; returns how many were published."""
    today = today or day_of(datetime.now(UTC))
    calendar = await load_calendar(session)
    claims = (await session.execute(
        select(Claim).where(Claim.status == ClaimStatus.IN_REVIEW, Claim.due_date < today, Claim.current_level.is_not(None))
        .order_by(Claim.due_date).limit(limit).with_for_update(skip_locked=True))).scalars().all()
    sent = 0
    for claim in claims:
        level, due = claim.current_level, claim.due_date
        if claim.status != ClaimStatus.IN_REVIEW or level is None or due is None:
            continue
        for kind in notices_due(due, today, calendar):
            org = org_at(claim.unit_path, level if kind == "reminder" else level_above(level))
            inserted = await session.execute(insert(OverdueNotice).values(
                claim_id=claim.id, level=level, kind=kind, org=org, due_date=due)
                .on_conflict_do_nothing().returning(OverdueNotice.kind))
            if inserted.first() is None:
                continue
            await publish(session, MESSAGING, TOPIC_CLAIMS, ClaimOverdue(
                claim_id=str(claim.id), member_id=claim.member_id, level=level, org=org, due_date=due, kind=kind))
            sent += 1
    return sent


async def overdue_sweeper(app: FastAPI) -> int:
    async with app.state.db.transaction() as session:
        return await sweep_overdue(session)


@router.get("/claims/overdue", response_model=list[OverdueItemOut], responses=problem_responses(401, 403))
async def list_overdue(session: SessionDep,
                       actor: Annotated[Principal, require_roles(*REVIEWER_LEVEL, Role.ADMIN)]) -> list[dict[str, Any]]:
    """Claims in review past their due date in the caller's branch, at the caller's level or below (a level
    sees what it may have to chase), the most overdue first."""
    today = day_of(datetime.now(UTC))  # the service's day, as every due date counts it
    stmt = select(Claim).where(Claim.status == ClaimStatus.IN_REVIEW, Claim.due_date < today)
    if actor.role != Role.ADMIN:
        mine = LEVELS.index(REVIEWER_LEVEL[actor.role])
        stmt = stmt.where(array_in_branch(Claim.unit_path, actor.branch),
                          Claim.current_level.in_([lv for lv in LEVELS[1:] if LEVELS.index(lv) <= mine]))
    claims = (await session.execute(stmt.order_by(Claim.due_date, Claim.level_entered_at).limit(500))).scalars().all()
    calendar = await load_calendar(session)
    notices: dict[Any, list[str]] = {}
    if claims:
        for row in (await session.execute(select(OverdueNotice).where(
                OverdueNotice.claim_id.in_([c.id for c in claims])))).scalars():
            if row.level == next(c.current_level for c in claims if c.id == row.claim_id):
                notices.setdefault(row.claim_id, []).append(row.kind)
    return [{"claim_id": str(c.id), "member_id": c.member_id, "period": c.period, "plan": c.plan,
             "current_level": c.current_level, "org": org_at(c.unit_path, c.current_level or "centre"),
             "due_date": c.due_date.isoformat() if c.due_date else None, "due_warning": c.due_warning,
             "working_days_overdue": working_days_between(c.due_date, today, calendar) if c.due_date else 0,
             "aid_amount": format_money(c.aid_amount) if c.aid_amount is not None else None,
             "unit": c.unit, "notices": sorted(notices.get(c.id, []))} for c in claims]
