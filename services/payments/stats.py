"""Branch figures of a period's payments for the ops dashboard (issue #14), and the instructions gauge.

Scope: a payee's ``unit_path`` ("/centre/office/agency/unit") is split into its segments and the caller's
organisation must be one of them (``string_to_array(unit_path, '/') @> ARRAY[org]``): whole segments,
never a text prefix or LIKE. Batches are the fund's: a branch sees how much of its members' aid waits in
batches awaiting release, not other branches' lines.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy import Text, and_, exists, func, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from services.payments.models import Batch, Instruction, Payee, Recovery
from shared.auth import REVIEWER_LEVEL, Principal, require_roles
from shared.deps import SessionDep
from shared.money import format_money
from shared.ops_metrics import MetricSource

router = APIRouter(prefix="/api/v1/stats", tags=["stats"])

STATS_ROLES = (*REVIEWER_LEVEL, "finance", "admin")
LIST_LIMIT = 50


class PaymentStats(BaseModel):
    period: str
    branch: str
    awaiting_release: dict[str, Any]
    pending: dict[str, Any]
    failed_to_fix: dict[str, Any]
    recoveries_due: dict[str, Any]
    paid: dict[str, Any]
    paid_by_month: list[dict[str, str]]


def _in_branch(actor: Principal, member_id: Any) -> Any:
    if actor.role == "admin":
        return True
    segments = func.string_to_array(Payee.unit_path, "/", type_=ARRAY(Text))
    return exists().where(Payee.member_id == member_id, segments.contains([actor.org]))


def _money(value: Any) -> str:
    return format_money(Decimal(value or 0))


@router.get("/periods/{period}/payments", response_model=PaymentStats)
async def payment_stats(period: str, session: SessionDep,
                        actor: Annotated[Principal, require_roles(*STATS_ROLES)]) -> dict[str, Any]:
    mine = and_(Instruction.period == period, _in_branch(actor, Instruction.member_id))
    awaiting = (await session.execute(
        select(func.count(), func.coalesce(func.sum(Instruction.amount), 0), func.count(func.distinct(Batch.id)))
        .join(Batch, Batch.id == Instruction.batch_id)
        .where(mine, Batch.status == "awaiting_release", Instruction.status == "batched"))).one()
    pending = (await session.execute(select(func.count(), func.coalesce(func.sum(Instruction.amount), 0))
                                     .where(mine, Instruction.status == "pending"))).one()
    live = aliased(Instruction)
    # A failed transfer is still to fix while no later attempt of the same aid (or top-up) is live.
    to_fix = and_(mine, Instruction.status == "failed", ~exists().where(
        live.claim_id == Instruction.claim_id, live.adjustment_id == Instruction.adjustment_id,
        live.attempt > Instruction.attempt))
    failed_count, failed_sum = (await session.execute(
        select(func.count(), func.coalesce(func.sum(Instruction.amount), 0)).where(to_fix))).one()
    failed_rows = (await session.execute(
        select(Instruction).where(to_fix).order_by(Instruction.created_at).limit(LIST_LIMIT))).scalars().all()
    outstanding = Recovery.amount_due - Recovery.amount_recovered
    rec_mine = and_(Recovery.period == period, _in_branch(actor, Recovery.member_id), outstanding > 0)
    rec_count, rec_sum = (await session.execute(
        select(func.count(), func.coalesce(func.sum(outstanding), 0)).where(rec_mine))).one()
    rec_rows = (await session.execute(
        select(Recovery).where(rec_mine).order_by(Recovery.created_at).limit(LIST_LIMIT))).scalars().all()
    paid_count, paid_sum = (await session.execute(
        select(func.count(), func.coalesce(func.sum(Instruction.amount), 0))
        .where(mine, Instruction.status == "paid"))).one()
    month = func.to_char(func.timezone("Asia/Shanghai", Instruction.settled_at), "YYYY-MM")
    by_month = (await session.execute(
        select(month, func.sum(Instruction.amount)).where(mine, Instruction.status == "paid",
                                                           Instruction.settled_at.is_not(None))
        .group_by(month).order_by(month))).all()
    return {
        "period": period, "branch": actor.org or "*",
        "awaiting_release": {"instructions": awaiting[0], "amount": _money(awaiting[1]), "batches": awaiting[2]},
        "pending": {"instructions": pending[0], "amount": _money(pending[1])},
        "failed_to_fix": {"count": failed_count, "amount": _money(failed_sum), "items": [
            {"instruction_id": str(i.id), "claim_id": i.claim_id, "member_id": i.member_id, "kind": i.kind,
             "attempt": i.attempt, "amount": format_money(i.amount), "reason": i.failure_reason or ""}
            for i in failed_rows]},
        "recoveries_due": {"count": rec_count, "amount": _money(rec_sum), "items": [
            {"recovery_id": str(r.id), "claim_id": r.claim_id, "member_id": r.member_id,
             "outstanding": format_money(r.amount_due - r.amount_recovered), "reason": r.reason}
            for r in rec_rows]},
        "paid": {"count": paid_count, "amount": _money(paid_sum)},
        "paid_by_month": [{"month": m, "paid": _money(a)} for m, a in by_month],
    }


async def instructions_by_status(session: AsyncSession) -> dict[tuple[str, ...], float]:
    rows = (await session.execute(select(Instruction.status, func.count()).group_by(Instruction.status))).all()
    return {(status,): float(count) for status, count in rows}


async def batches_by_status(session: AsyncSession) -> dict[tuple[str, ...], float]:
    rows = (await session.execute(select(Batch.status, func.count()).group_by(Batch.status))).all()
    return {(status,): float(count) for status, count in rows}


METRICS = [
    MetricSource("payment_instructions_by_status", "payment instructions by status", ("status",),
                 instructions_by_status),
    MetricSource("payment_batches_by_status", "payment batches by status", ("status",), batches_by_status),
]
