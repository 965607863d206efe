"""Branch figures of a period's claims for the ops dashboard (issue #14), and the claims-per-status gauge.

Scope: a caller sees the claims of units under their own organisation, matched on whole path segments
(``unit_path @> ARRAY[org]``), never by text prefix: "YN-KM" does not see "YN-KM2".

Read model: ``claim_paid_at`` records when payments announced a claim's own aid paid (``payment.paid``, the
envelope's ``occurred_at``), so "days from discharge to payment" needs no call to payments. The days from
discharge to submission, approval and payment are each claim's clock (``domain/clock.py``), as its page shows. Claims paid before
this table existed have no row and are left out of the figure (the response says how many are counted).

Bureau data: a claim counts as "built from bureau data" when the bureau sent its settlement
(``POST /settlements`` stored a row with its ``setl_id``) before or after the claim, whether someone applied
(``source: application``) or the record made it (``source: bureau``, a plan's auto_claim).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy import DateTime, String, and_, case, exists, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from services.claims.domain.approval import day_of
from services.claims.domain.clock import claim_clock
from services.claims.domain.routing import LEVELS
from services.claims.models import Base, Claim, ClaimStep, PeriodCopy, Settlement
from services.claims.schemas import (
    AidTotals,
    BureauShare,
    DaysToApproval,
    DaysToPayment,
    DaysToSubmission,
    MonthFigures,
    OverdueStats,
)
from shared.auth import REVIEWER_LEVEL, Principal, require_roles
from shared.deps import SessionDep
from shared.errors import NotFound
from shared.events import Envelope, EventPayload, PaymentSettled
from shared.messaging import Handler
from shared.money import format_money
from shared.ops_metrics import MetricSource
from shared.schemas import problem_responses
from shared.vocab import ClaimStatus, Role

router = APIRouter(prefix="/api/v1/stats", tags=["stats"])

STATS_ROLES = (*REVIEWER_LEVEL, Role.FINANCE, Role.ADMIN)
# Display order of the statuses a claim goes through (the values claims.status takes).
STATUSES = (ClaimStatus.SUBMITTED, ClaimStatus.IN_REVIEW, ClaimStatus.RETURNED, ClaimStatus.APPROVED,
            ClaimStatus.PAYMENT_FAILED, ClaimStatus.PAID, ClaimStatus.REJECTED)
APPROVED_STATUSES = (ClaimStatus.APPROVED, ClaimStatus.PAYMENT_FAILED, ClaimStatus.PAID)
# Days from discharge to payment, in buckets [from, to): the last is open.
DAY_BUCKETS = ((0, 8), (8, 15), (15, 31), (31, 61), (61, 91), (91, None))


class ClaimPaidAt(Base):
    __tablename__ = "claim_paid_at"
    claim_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    paid_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


def recording_paid_at(handler: Handler) -> Handler:
    """Wrap claims' ``payment.paid`` handler: the claim's own aid paid also stamps the read model (once)."""

    async def handle(session: AsyncSession, envelope: Envelope, event: EventPayload) -> None:
        await handler(session, envelope, event)
        assert isinstance(event, PaymentSettled)
        if not event.adjustment_id:
            await session.execute(insert(ClaimPaidAt).values(claim_id=event.claim_id, paid_at=envelope.occurred_at)
                                  .on_conflict_do_nothing())

    return handle


def day_figures(days: Sequence[int]) -> dict[str, Any]:
    """Median, 90th percentile (nearest rank) and the bucketed distribution of whole days (pure)."""
    ordered = sorted(days)
    buckets = [{"from": lo, "to": hi, "count": sum(1 for d in ordered if d >= lo and (hi is None or d < hi))}
               for lo, hi in DAY_BUCKETS]
    if not ordered:
        return {"count": 0, "median": None, "p90": None, "buckets": buckets}
    p90 = ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]
    return {"count": len(ordered), "median": float(statistics.median(ordered)), "p90": p90, "buckets": buckets}


class ClaimStats(BaseModel):
    period: str
    branch: str
    total: int
    by_status: dict[str, int]
    in_review_by_level: dict[str, int]
    overdue: OverdueStats
    days_to_submission: DaysToSubmission
    days_to_approval: DaysToApproval
    days_to_payment: DaysToPayment
    bureau: BureauShare
    aid: AidTotals
    by_month: list[MonthFigures]


async def clocks(session: AsyncSession, mine: Any) -> dict[str, list[int]]:
    """Each claim's clock (domain/clock.py, the figures its own page shows): days from discharge to submission
    (every claim), to final approval (claims approved since) and to payment (paid claims with a recorded
    payment), each counted on the service's calendar day (``day_of``), never on the UTC date."""
    final_approval = (select(ClaimStep.claim_id, func.max(ClaimStep.at).label("at"))
                      .join(Claim, Claim.id == ClaimStep.claim_id)
                      .where(mine, ClaimStep.decision == "approve", ClaimStep.level == Claim.final_level,
                             Claim.status.in_(APPROVED_STATUSES))
                      .group_by(ClaimStep.claim_id).subquery())
    rows = (await session.execute(
        select(Claim.discharge_date, Claim.created_at, Claim.status, final_approval.c.at, ClaimPaidAt.paid_at)
        .outerjoin(final_approval, final_approval.c.claim_id == Claim.id)
        .outerjoin(ClaimPaidAt, ClaimPaidAt.claim_id == func.cast(Claim.id, String))
        .where(mine))).all()
    out: dict[str, list[int]] = {"submission": [], "approval": [], "payment": []}
    for discharge, created_at, status, approved_at, paid_at in rows:
        clock = claim_clock(discharge, created_at, approved_at, paid_at if status == ClaimStatus.PAID else None)
        for name, value in (("submission", clock.days_to_submission), ("approval", clock.days_to_approval),
                            ("payment", clock.days_to_payment)):
            if value is not None:
                out[name].append(value)
    return out


def _scope(actor: Principal) -> Any:
    return True if actor.role == Role.ADMIN else Claim.unit_path.contains([actor.org])


@router.get("/periods/{period}/claims", response_model=ClaimStats, responses=problem_responses(401, 403, 404))
async def claim_stats(period: str, session: SessionDep,
                      actor: Annotated[Principal, require_roles(*STATS_ROLES)]) -> dict[str, Any]:
    if await session.get(PeriodCopy, period) is None:
        raise NotFound(f"互助期 {period} 不存在。", code="period_not_found")
    mine = and_(Claim.period == period, _scope(actor))
    today = day_of(datetime.now(UTC))  # the service's day, as every due date counts it
    by_status: dict[str, int] = dict.fromkeys(STATUSES, 0)
    for status, count in (await session.execute(
            select(Claim.status, func.count()).where(mine).group_by(Claim.status))).all():
        by_status[status] = count
    in_review = {lv: 0 for lv in LEVELS[1:]}
    overdue_by_level = {lv: 0 for lv in LEVELS[1:]}
    for level, count, late in (await session.execute(
            select(Claim.current_level, func.count(), func.count().filter(Claim.due_date < today))
            .where(mine, Claim.status == ClaimStatus.IN_REVIEW).group_by(Claim.current_level))).all():
        in_review[level or ""] = count
        overdue_by_level[level or ""] = late
    clock = await clocks(session, mine)
    from_bureau = exists().where(Settlement.setl_id == Claim.setl_id)
    total, bureau_count = (await session.execute(
        select(func.count(), func.count().filter(from_bureau)).where(mine))).one()
    approved_ids = select(Claim.id).where(mine, Claim.status.in_(APPROVED_STATUSES))
    approved_at = (select(ClaimStep.claim_id, func.max(ClaimStep.at).label("at"))
                   .where(ClaimStep.decision == "approve", ClaimStep.claim_id.in_(approved_ids))
                   .group_by(ClaimStep.claim_id).subquery())
    month = func.to_char(func.timezone("Asia/Shanghai", approved_at.c.at), "YYYY-MM")
    approved_months = (await session.execute(
        select(month, func.count(), func.sum(Claim.aid_amount))
        .join(approved_at, approved_at.c.claim_id == Claim.id)
        .where(mine, Claim.status.in_(APPROVED_STATUSES)).group_by(month).order_by(month))).all()
    paid_month = func.to_char(func.timezone("Asia/Shanghai", ClaimPaidAt.paid_at), "YYYY-MM")
    paid_months = dict((m, (c, s)) for m, c, s in (await session.execute(
        select(paid_month, func.count(), func.sum(Claim.aid_amount))
        .join(ClaimPaidAt, ClaimPaidAt.claim_id == func.cast(Claim.id, String))
        .where(mine, Claim.status == ClaimStatus.PAID).group_by(paid_month))).all())
    months: dict[str, dict[str, Any]] = {}
    for m, count, amount in approved_months:
        months[m] = {"month": m, "approved_count": count, "approved": amount or Decimal(0),
                     "paid_count": 0, "paid": Decimal(0)}
    for m, (count, amount) in paid_months.items():
        row = months.setdefault(m, {"month": m, "approved_count": 0, "approved": Decimal(0),
                                    "paid_count": 0, "paid": Decimal(0)})
        row["paid_count"], row["paid"] = count, amount or Decimal(0)
    approved_total, paid_total = (await session.execute(select(
        func.coalesce(func.sum(case((Claim.status.in_(APPROVED_STATUSES), Claim.aid_amount))), 0),
        func.coalesce(func.sum(case((Claim.status == ClaimStatus.PAID, Claim.aid_amount))), 0)).where(mine))).one()
    return {
        "period": period, "branch": actor.org or "*", "total": total, "by_status": by_status,
        "in_review_by_level": in_review,
        "overdue": {"count": sum(overdue_by_level.values()), "by_level": overdue_by_level},
        "days_to_submission": {**day_figures(clock["submission"]), "claims": total},
        "days_to_approval": {**day_figures(clock["approval"]),
                             "approved_claims": sum(by_status.get(s, 0) for s in APPROVED_STATUSES)},
        "days_to_payment": {**day_figures(clock["payment"]), "paid_claims": by_status.get(ClaimStatus.PAID, 0)},
        "bureau": {"claims": total, "from_bureau": bureau_count,
                   "share": round(bureau_count / total, 4) if total else 0.0,
                   "definition": "结算单由医保部门推送（/settlements）的申请"},
        "aid": {"approved": format_money(Decimal(approved_total)), "paid": format_money(Decimal(paid_total))},
        "by_month": [{**r, "approved": format_money(r["approved"]), "paid": format_money(r["paid"])}
                     for _, r in sorted(months.items())],
    }


async def claims_by_status(session: AsyncSession) -> dict[tuple[str, ...], float]:
    rows = (await session.execute(select(Claim.status, func.count()).group_by(Claim.status))).all()
    return {(status,): float(count) for status, count in rows}


METRICS = [MetricSource("claims_by_status", "claims in the database by status", ("status",), claims_by_status)]
