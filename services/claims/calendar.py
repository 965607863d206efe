"""The working-day calendar claims keeps (seeded from chinesecalendar by migration 0003, updated by an admin
each year) and its endpoints."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.claims.domain.workdays import WorkCalendar
from services.claims.models import CalendarDay, CalendarYear, Claim
from services.claims.schemas import CalendarYearOut
from shared.auth import CurrentUser, Principal, require_roles
from shared.deps import SessionDep
from shared.errors import Invalid
from shared.schemas import problem_responses
from shared.vocab import ClaimStatus, Role

router = APIRouter(prefix="/api/v1", tags=["calendar"])

_cache: tuple[tuple[int, datetime | None], WorkCalendar] | None = None


# What tells whether the stored calendar changed: its years and their latest change (scalar subqueries, so a caller
# can read them with its own query: service.submit reads them with the period's rulebook).
CALENDAR_SIGNATURE = (select(func.count()).select_from(CalendarYear).scalar_subquery(),
                      select(func.max(CalendarYear.updated_at)).scalar_subquery())


async def load_calendar(session: AsyncSession, signature: tuple[Any, ...] | None = None) -> WorkCalendar:
    """The calendar as stored; re-read only when a year was added or changed since the last read (``signature``:
    the values of ``CALENDAR_SIGNATURE`` when the caller has read them already)."""
    global _cache
    if signature is None:
        signature = tuple((await session.execute(select(*CALENDAR_SIGNATURE))).one())
    count, latest = signature
    key = (int(count), latest)
    if _cache is not None and _cache[0] == key:
        return _cache[1]
    years = frozenset((await session.execute(select(CalendarYear.year))).scalars())
    holidays: dict[date, str] = {}
    workdays: dict[date, str] = {}
    for row in (await session.execute(select(CalendarDay))).scalars():
        (workdays if row.working else holidays)[row.day] = row.name
    calendar = WorkCalendar(years=years, holidays=holidays, workdays=workdays)
    _cache = (key, calendar)
    return calendar


class DayIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    date: date
    name: str = Field(default="", max_length=100)


class YearIn(BaseModel):
    """The State Council's arrangement for one year: days off and make-up working days (调休上班)."""

    model_config = ConfigDict(extra="forbid")
    holidays: list[DayIn] = Field(min_length=1)
    workdays: list[DayIn] = Field(default_factory=list)


def _year_out(year: CalendarYear | None, number: int, days: list[CalendarDay]) -> dict[str, Any]:
    return {
        "year": number, "known": year is not None,
        "source": year.source if year else None, "updated_by": year.updated_by if year else None,
        "updated_at": year.updated_at.isoformat() if year else None,
        "holidays": [{"date": d.day.isoformat(), "name": d.name} for d in days if not d.working],
        "workdays": [{"date": d.day.isoformat(), "name": d.name} for d in days if d.working],
        "warning": None if year else f"{number} 年的法定节假日安排尚未录入，截止日期按周一至周五计算。",
    }


YearPath = Annotated[int, Path(ge=2000, le=2100)]


@router.get("/calendar/{year}", response_model=CalendarYearOut, responses=problem_responses(401, 422))
async def get_year(year: YearPath, session: SessionDep, _: CurrentUser) -> dict[str, Any]:
    stored = await session.get(CalendarYear, year)
    days = list((await session.execute(select(CalendarDay).where(CalendarDay.year == year)
                                       .order_by(CalendarDay.day))).scalars())
    return _year_out(stored, year, days)


@router.post("/calendar/{year}", response_model=CalendarYearOut, responses=problem_responses(401, 403, 422))
async def put_year(year: YearPath, body: YearIn, session: SessionDep,
                   actor: Annotated[Principal, require_roles(Role.ADMIN)]) -> dict[str, Any]:
    """Replace one year's arrangement; in-review deadlines computed without it are computed again."""
    errors = [{"loc": ["body", kind, i, "date"], "msg": f"日期不在 {year} 年内"}
              for kind in ("holidays", "workdays") for i, d in enumerate(getattr(body, kind)) if d.date.year != year]
    seen: dict[date, tuple[str, int]] = {}
    for kind in ("holidays", "workdays"):
        for i, d in enumerate(getattr(body, kind)):
            if d.date in seen and seen[d.date][0] == kind:
                errors.append({"loc": ["body", kind, i, "date"], "msg": f"{d.date} 重复（与第 {seen[d.date][1] + 1} 项相同）",
                               "code": "duplicate_date"})
            seen.setdefault(d.date, (kind, i))
    both = {d.date for d in body.holidays} & {d.date for d in body.workdays}
    errors += [{"loc": ["body", "workdays"], "msg": f"{d} 同时是假日和工作日"} for d in sorted(both)]
    if errors:
        raise Invalid("节假日安排有误，请按 errors 逐项修改。", code="calendar_invalid", errors=errors)
    await session.execute(delete(CalendarDay).where(CalendarDay.year == year))
    days = [CalendarDay(day=d.date, year=year, working=False, name=d.name or "假日") for d in body.holidays]
    days += [CalendarDay(day=d.date, year=year, working=True, name=d.name or "调休上班") for d in body.workdays]
    session.add_all(days)
    stored = await session.get(CalendarYear, year)
    if stored is None:
        stored = CalendarYear(year=year, source="admin", updated_by=actor.username)
        session.add(stored)
    stored.source, stored.updated_by, stored.updated_at = "admin", actor.username, datetime.now(UTC)
    await session.flush()
    recomputed = await recompute_warned_deadlines(session)
    out = _year_out(stored, year, sorted(days, key=lambda d: d.day))
    out["deadlines_recomputed"] = recomputed
    return out


async def recompute_warned_deadlines(session: AsyncSession) -> int:
    """Claims whose due date was counted Monday-Friday for want of a calendar get it counted again."""
    from services.claims.domain.approval import level_due
    from services.claims.models import PeriodCopy
    from services.claims.repository import rulebook_of

    calendar = await load_calendar(session)
    claims = (await session.execute(select(Claim).where(Claim.status == ClaimStatus.IN_REVIEW, Claim.due_warning.is_not(None),
                                                        Claim.level_entered_at.is_not(None))
                                    .with_for_update())).scalars().all()
    for claim in claims:
        period = await session.get(PeriodCopy, claim.period)
        if period is None or claim.level_entered_at is None:
            continue
        # the one due-date function: from the day the claim reached its level (domain.approval.level_due)
        due = level_due(claim.level_entered_at, rulebook_of(period).approval.sla_working_days, calendar)
        claim.due_date, claim.due_warning = due.due, due.warning
    return len(claims)
