"""Payments' HTTP endpoints (API.md "Payments (8003)")."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from sqlalchemy import or_, select

from services.payments.models import Instruction, Payee
from shared.auth import Principal, require_roles
from shared.deps import SessionDep
from shared.masking import mask_account
from shared.money import format_money
from shared.scope import text_in_branch

router = APIRouter(prefix="/api/v1")
STAFF = ("finance", "admin", "centre_reviewer", "office_reviewer", "agency_reviewer", "unit_agent")


@router.get("/payment-instructions", tags=["payments"])
async def list_instructions(session: SessionDep, actor: Annotated[Principal, require_roles(*STAFF)],
                            claim_id: str | None = None, member_id: str | None = None,
                            status: str | None = None) -> list[dict]:
    stmt = select(Instruction, Payee.unit_path).outerjoin(Payee, Payee.member_id == Instruction.member_id)
    if claim_id:
        stmt = stmt.where(Instruction.claim_id == claim_id)
    if member_id:
        stmt = stmt.where(Instruction.member_id == member_id)
    if status:
        stmt = stmt.where(Instruction.status == status)
    if actor.role != "admin":  # staff, finance included, see their own branch only (by path segments)
        mine = text_in_branch(Payee.unit_path, actor.branch)
        # An instruction whose payee's details have not arrived yet has no branch: the centre's staff see it.
        stmt = stmt.where(or_(mine, Payee.member_id.is_(None)) if actor.fund_wide else mine)
    rows = (await session.execute(stmt.order_by(Instruction.created_at).limit(1000))).all()
    # Finance needs the whole account to pay; everyone else sees it masked.
    whole = actor.role == "finance"
    return [{
        "instruction_id": str(i.id), "claim_id": i.claim_id, "member_id": i.member_id, "period": i.period,
        "amount": format_money(i.amount), "payee_name": i.payee_name,
        "account": (i.account if whole else mask_account(i.account)) if i.account else None,
        "bank_name": i.bank_name, "status": i.status, "attempt": i.attempt, "kind": i.kind,
        "adjustment_id": i.adjustment_id or None, "batch_id": str(i.batch_id) if i.batch_id else None,
        "failure_reason": i.failure_reason,
        "created_at": i.created_at.isoformat(),
    } for i, _ in rows]
