"""Branch figures of a period's enrolment for the ops dashboard (issue #14), and the roster rows gauge.

Scope: a caller sees the units under their own organisation, matched on whole path segments
(``orgs.path @> ARRAY[org]``), never by text prefix. Members are counted per unit as enrolments covered or
pending in the period, next to the same unit's count in the previous period (the rulebook's
``previous_period``); fees due and received come from the unit's rosters, fees received by month from the
dates the unit agents recorded their payments. What offices remitted is in ``/periods/{p}/remittance-report``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.enrollment.models import Enrolment, Org, Period, Roster, RosterPayment
from shared.auth import REVIEWER_LEVEL, Principal, require_roles
from shared.deps import SessionDep
from shared.errors import NotFound
from shared.money import format_money
from shared.ops_metrics import MetricSource

router = APIRouter(prefix="/api/v1/stats", tags=["stats"])

STATS_ROLES = (*REVIEWER_LEVEL, "finance", "admin")
COUNTED = ("pending", "covered")  # enrolments that hold a share in the period (withdrawn ones do not)
ZERO = Decimal("0.00")


class PeriodItem(BaseModel):
    code: str
    name: str
    previous_period: str | None


class EnrollmentStats(BaseModel):
    period: str
    previous_period: str | None
    branch: str
    units: list[dict[str, Any]]
    offices: list[dict[str, Any]]
    totals: dict[str, Any]
    fees_by_month: list[dict[str, str]]


@router.get("/periods", response_model=list[PeriodItem])
async def periods(session: SessionDep, _: Annotated[Principal, require_roles(*STATS_ROLES)]) -> list[dict[str, Any]]:
    """Every period, newest first (the dashboard's period picker)."""
    rows = (await session.execute(select(Period).order_by(Period.created_at.desc(), Period.code))).scalars().all()
    return [{"code": p.code, "name": p.name, "previous_period": p.previous_period} for p in rows]


async def _members_by_unit(session: AsyncSession, period: str | None) -> dict[str, int]:
    if period is None:
        return {}
    rows = (await session.execute(select(Enrolment.unit, func.count()).where(
        Enrolment.period == period, Enrolment.status.in_(COUNTED)).group_by(Enrolment.unit))).all()
    return {unit: count for unit, count in rows}


@router.get("/periods/{period}/enrollment", response_model=EnrollmentStats)
async def enrollment_stats(period: str, session: SessionDep,
                           actor: Annotated[Principal, require_roles(*STATS_ROLES)]) -> dict[str, Any]:
    found = await session.get(Period, period)
    if found is None:
        raise NotFound(f"互助期 {period} 不存在。", code="period_not_found")
    previous = found.previous_period
    now, before = await _members_by_unit(session, period), await _members_by_unit(session, previous)
    fees = {unit: (due, received) for unit, due, received in (await session.execute(
        select(Roster.unit, func.sum(Roster.fee_total), func.sum(Roster.paid_total))
        .where(Roster.period == period).group_by(Roster.unit))).all()}
    units_wanted = set(now) | set(before) | set(fees)
    stmt = select(Org).where(Org.code.in_(units_wanted))
    if actor.role != "admin":
        stmt = stmt.where(Org.path.contains([actor.org]))
    orgs = (await session.execute(stmt)).scalars().all()
    offices_needed = {o.path[1] for o in orgs if len(o.path) > 1}
    office_names = dict((await session.execute(
        select(Org.code, Org.name).where(Org.code.in_(offices_needed)))).all()) if offices_needed else {}
    units: list[dict[str, Any]] = []
    offices: dict[str, dict[str, Any]] = {}
    for org in sorted(orgs, key=lambda o: o.path):
        office = org.path[1] if len(org.path) > 1 else org.path[0]
        due, received = fees.get(org.code, (ZERO, ZERO))
        row: dict[str, Any] = {"office": office, "office_name": office_names.get(office, ""), "unit": org.code, "name": org.name,
               "members": now.get(org.code, 0), "members_previous": before.get(org.code, 0),
               "fees_due": due, "fees_received": received}
        units.append(row)
        agg = offices.setdefault(office, {"office": office, "name": office_names.get(office, ""), "units": 0,
                                          "members": 0, "members_previous": 0, "fees_due": ZERO,
                                          "fees_received": ZERO})
        agg["units"] += 1
        for key in ("members", "members_previous", "fees_due", "fees_received"):
            agg[key] += row[key]
    mine = [o.code for o in orgs]
    month = func.to_char(RosterPayment.paid_at, "YYYY-MM")
    by_month = (await session.execute(
        select(month, func.sum(RosterPayment.amount)).join(Roster, Roster.id == RosterPayment.roster_id)
        .where(Roster.period == period, Roster.unit.in_(mine)).group_by(month).order_by(month))).all() if mine else []

    def money(row: dict[str, Any]) -> dict[str, Any]:
        return {**row, "fees_due": format_money(row["fees_due"]), "fees_received": format_money(row["fees_received"]),
                "unpaid": format_money(row["fees_due"] - row["fees_received"])}

    totals = {"units": len(units), "members": sum(u["members"] for u in units),
              "members_previous": sum(u["members_previous"] for u in units),
              "fees_due": sum((u["fees_due"] for u in units), ZERO),
              "fees_received": sum((u["fees_received"] for u in units), ZERO)}
    return {"period": period, "previous_period": previous, "branch": actor.org or "*",
            "units": [money(u) for u in units], "offices": [money(o) for o in offices.values()],
            "totals": money(totals),
            "fees_by_month": [{"month": m, "received": format_money(a)} for m, a in by_month]}


async def roster_rows_imported(session: AsyncSession) -> dict[tuple[str, ...], float]:
    """Rows of every roster accepted so far (all replicas share the database: take max() in PromQL)."""
    total = (await session.execute(select(func.coalesce(func.sum(Roster.member_count), 0)))).scalar_one()
    return {(): float(total)}


async def rosters_by_status(session: AsyncSession) -> dict[tuple[str, ...], float]:
    rows = (await session.execute(select(Roster.status, func.count()).group_by(Roster.status))).all()
    return {(status,): float(count) for status, count in rows}


METRICS = [
    MetricSource("roster_rows_imported_total", "roster rows accepted (members), all time", (), roster_rows_imported),
    MetricSource("rosters_by_status", "rosters by status", ("status",), rosters_by_status),
]
