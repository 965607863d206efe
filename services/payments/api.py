"""Payments' HTTP endpoints (docs/API.md "Payments (8003)")."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import or_, select

from services.payments.models import Instruction, InstructionStatus, Payee
from shared.auth import Principal, require_roles
from shared.deps import SessionDep
from shared.errors import Conflict, Forbidden, NotFound
from shared.masking import mask_account
from shared.money import format_money
from shared.schemas import MoneyOut, problem_responses
from shared.scope import in_branch, text_in_branch

router = APIRouter(prefix="/api/v1")


class HoldOut(BaseModel):
    reason: str
    confirmed_by: str | None
    confirmed_at: str | None
    note: str | None


class InstructionOut(BaseModel):
    instruction_id: str
    claim_id: str
    member_id: str
    period: str
    amount: MoneyOut
    payee_name: str | None
    account: str | None  # masked for every role: the bank gets it whole in the released file
    bank_name: str | None
    status: InstructionStatus
    attempt: int
    kind: str
    adjustment_id: str | None
    batch_id: str | None
    failure_reason: str | None
    hold: HoldOut | None
    created_at: str
STAFF = ("finance", "admin", "centre_reviewer", "office_reviewer", "agency_reviewer", "unit_agent")


@router.get("/payment-instructions", tags=["payments"], response_model=list[InstructionOut],
            responses=problem_responses(403))
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
    return [instruction_out(i) for i, _ in rows]


def instruction_out(i: Instruction) -> dict[str, Any]:
    # The account masked for every role, finance included: the bank gets it whole in the released file.
    return {
        "instruction_id": str(i.id), "claim_id": i.claim_id, "member_id": i.member_id, "period": i.period,
        "amount": format_money(i.amount), "payee_name": i.payee_name,
        "account": mask_account(i.account) if i.account else None,
        "bank_name": i.bank_name, "status": i.status, "attempt": i.attempt, "kind": i.kind,
        "adjustment_id": i.adjustment_id or None, "batch_id": str(i.batch_id) if i.batch_id else None,
        "failure_reason": i.failure_reason,
        "hold": {"reason": i.hold_reason, "confirmed_by": i.hold_confirmed_by_name,
                 "confirmed_at": i.hold_confirmed_at.isoformat() if i.hold_confirmed_at else None,
                 "note": i.hold_confirm_note} if i.hold_reason else None,
        "created_at": i.created_at.isoformat(),
    }


class ConfirmHoldIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=2, max_length=500)


@router.post("/payment-instructions/{instruction_id}/confirm-hold", tags=["payments"], response_model=InstructionOut,
             responses=problem_responses(403, 404, 409))
async def confirm_hold(instruction_id: uuid.UUID, body: ConfirmHoldIn, session: SessionDep,
                       actor: Annotated[Principal, require_roles("finance")]) -> dict:
    """A finance officer confirms a payment to a just-changed account (e.g. called the member at the number
    they had before): the instruction goes back to pending and into the next cut. Who, when and why are
    kept on the instruction. The person who changed the account cannot confirm it."""
    instruction = await session.get(Instruction, instruction_id, with_for_update=True)
    if instruction is None:
        raise NotFound("付款指令不存在。", code="instruction_not_found")
    payee = await session.get(Payee, instruction.member_id)
    if payee is None or not in_branch(payee.unit_path.strip("/").split("/"), actor.branch):
        # Finance confirms holds in its own branch only (issue #9 §5); elsewhere the instruction does not exist.
        raise NotFound("付款指令不存在。", code="instruction_not_found")
    if instruction.status != InstructionStatus.HELD:
        raise Conflict(f"该付款指令状态为 {instruction.status}，无需核实放行。", code="not_held")
    if payee.account_changed_by and payee.account_changed_by == actor.user_id:
        raise Forbidden("变更收款账号的人不能核实放行该付款，请由另一位财务人员办理。", code="same_person")
    instruction.status = InstructionStatus.PENDING
    instruction.hold_confirmed_by, instruction.hold_confirmed_by_name = actor.user_id, actor.username
    instruction.hold_confirmed_at, instruction.hold_confirm_note = datetime.now(UTC), body.reason
    return instruction_out(instruction)
