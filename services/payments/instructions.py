"""The life of a payment instruction: created once per approved aid or top-up, cut into a batch, paid or
failed, retried to corrected bank details, cancelled by a revocation; with the ledger entries each step posts.

Identity is ``(claim_id, adjustment_id, attempt)`` (unique), and a partial unique index allows one live
instruction (pending, batched or paid) per ``(claim_id, adjustment_id)``: every insert here is
``ON CONFLICT DO NOTHING``, so a redelivered or replayed event can never create a second payment even if the
inbox were bypassed (docs/ARCHITECTURE.md "Idempotent commands").
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import and_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from services.payments import journal, ledger
from services.payments.models import (
    MESSAGING,
    Batch,
    Instruction,
    InstructionStatus,
    Payee,
    Recovery,
    RevokedClaim,
)
from shared.events import TOPIC_PAYMENTS, PaymentFailed, PaymentInstructionCreated, PaymentSettled
from shared.messaging import publish

AID = ""  # adjustment_id of a claim's own approved aid; a top-up carries its adjustment's id

# ISO 20022 status reason codes (ExternalStatusReason1Code) a bank puts in pain.002, in the words a unit
# agent acts on (docs/DOMAIN.md "Payment": failures such as a closed account or a name mismatch are corrected).
REASONS = {
    "AC01": "账号有误",
    "AC04": "账户已销户",
    "AC06": "账户已冻结",
    "AG01": "该账户不允许此类交易",
    "BE01": "户名不符",
    "RC01": "开户行有误",
    "RR01": "缺少收款人账户或身份信息",
    "MS03": "银行未说明原因",
}
WHAT_TO_FIX = "请单位经办人核实会员的银行账号、户名和开户行，在系统中更正后将自动重新支付。"


def failure_text(reason: str | None) -> str:
    """The reason a claim's payment failed, for the unit agent: the bank's reason in Chinese, then what to do."""
    text = (reason or "").strip()
    text = REASONS.get(text.upper(), text) or "银行退回，未说明原因"
    return f"{text}。{WHAT_TO_FIX}"[:200]


async def is_revoked(session: AsyncSession, claim_id: str) -> bool:
    return await session.get(RevokedClaim, claim_id) is not None


def hold_reason(payee: Payee | None, hold: timedelta, now: datetime | None = None) -> str | None:
    """Why a payment to this payee waits for a finance officer: their account changed less than ``hold`` ago
    (the takeover of issue #9 ended in a pending payment sent to a just-changed account). None: no hold."""
    changed = payee.account_changed_at if payee is not None else None
    if changed is None or (now or datetime.now(UTC)) - changed >= hold:
        return None
    return f"收款账号于 {changed.astimezone(UTC).date().isoformat()} 变更，{hold.days} 天内的付款须财务人员核实后放行"


async def create(session: AsyncSession, *, claim_id: str, adjustment_id: str, attempt: int, member_id: str,
                 period: str, amount: Decimal, payee: Payee | None, hold: timedelta) -> uuid.UUID | None:
    """Insert one instruction and announce it; None when its identity (or a live sibling) already exists.
    It is ``held`` when the payee's account changed within ``hold``."""
    instruction_id = uuid.uuid4()
    held = hold_reason(payee, hold)
    inserted = (await session.execute(
        insert(Instruction).values(
            id=instruction_id, claim_id=claim_id, kind="aid" if adjustment_id == AID else "top_up",
            adjustment_id=adjustment_id, attempt=attempt, member_id=member_id, period=period, amount=amount,
            status=InstructionStatus.HELD if held else InstructionStatus.PENDING, hold_reason=held,
            payee_name=payee.name if payee else None,
            account=payee.bank_account if payee else None, bank_name=payee.bank_name if payee else None,
        ).on_conflict_do_nothing().returning(Instruction.id))).first()
    if inserted is None:
        return None
    await publish(session, MESSAGING, TOPIC_PAYMENTS, PaymentInstructionCreated(
        instruction_id=str(instruction_id), claim_id=claim_id, member_id=member_id, attempt=attempt, amount=amount,
        adjustment_id=adjustment_id))
    return instruction_id


async def approve(session: AsyncSession, *, claim_id: str, adjustment_id: str, member_id: str, period: str,
                  amount: Decimal, hold: timedelta) -> uuid.UUID | None:
    """Approved aid (or a top-up) becomes its first instruction and a payable in the ledger, both once."""
    payee = await session.get(Payee, member_id)
    created = await create(session, claim_id=claim_id, adjustment_id=adjustment_id, attempt=1,
                           member_id=member_id, period=period, amount=amount, payee=payee, hold=hold)
    if created is not None:
        await journal.post(session, period, ledger.aid_approved(amount), f"approved:{claim_id}:{adjustment_id}",
                           f"补助核准 claim {claim_id}")
    return created


def _differs(instruction: Instruction, payee: Payee) -> bool:
    return (instruction.account, instruction.payee_name, instruction.bank_name) != (
        payee.bank_account, payee.name, payee.bank_name)


async def retry(session: AsyncSession, failed: Instruction, payee: Payee | None,
                hold: timedelta) -> uuid.UUID | None:
    """A failed transfer is paid again, as attempt n+1, only to corrected details (the same details would fail
    the same way) and never for a revoked claim. No ledger entry: the aid stayed payable while it failed."""
    if payee is None or not _differs(failed, payee) or await is_revoked(session, failed.claim_id):
        return None
    return await create(session, claim_id=failed.claim_id, adjustment_id=failed.adjustment_id,
                        attempt=failed.attempt + 1, member_id=failed.member_id, period=failed.period,
                        amount=failed.amount, payee=payee, hold=hold)


async def latest_failed(session: AsyncSession, member_id: str) -> list[Instruction]:
    """A member's failed instructions that are the last attempt of their chain (nothing newer exists)."""
    newer = aliased(Instruction)
    return list((await session.execute(
        select(Instruction).where(
            Instruction.member_id == member_id, Instruction.status == "failed",
            ~select(newer.id).where(and_(newer.claim_id == Instruction.claim_id,
                                         newer.adjustment_id == Instruction.adjustment_id,
                                         newer.attempt > Instruction.attempt)).exists(),
        ).order_by(Instruction.created_at))).scalars().all())


async def retry_member(session: AsyncSession, member_id: str, hold: timedelta) -> None:
    """The member's bank details changed (member.contact_changed / details_corrected): pending (or held)
    instructions not yet in any file take the new details, and failed ones are paid again to them (docs/API.md
    PATCH members). An account changed within ``hold`` holds them all until finance confirms it again."""
    payee = await session.get(Payee, member_id)
    if payee is None:
        return
    open_ = (Instruction.member_id == member_id, Instruction.batch_id.is_(None),
             Instruction.status.in_((InstructionStatus.PENDING, InstructionStatus.HELD)))
    await session.execute(update(Instruction).where(*open_).values(
        payee_name=payee.name, account=payee.bank_account, bank_name=payee.bank_name))
    held = hold_reason(payee, hold)
    if held is not None:
        await session.execute(update(Instruction).where(*open_).values(
            status=InstructionStatus.HELD, hold_reason=held, hold_confirmed_by=None, hold_confirmed_by_name=None,
            hold_confirmed_at=None, hold_confirm_note=None))
    for failed in await latest_failed(session, member_id):
        await retry(session, failed, payee, hold)


async def settle_paid(session: AsyncSession, instruction: Instruction) -> None:
    instruction.status, instruction.settled_at = "paid", datetime.now(UTC)
    await journal.post(session, instruction.period, ledger.aid_paid(instruction.amount), f"paid:{instruction.id}",
                       f"补助支付 claim {instruction.claim_id} attempt {instruction.attempt}")
    await publish(session, MESSAGING, TOPIC_PAYMENTS, PaymentSettled(
        instruction_id=str(instruction.id), claim_id=instruction.claim_id, member_id=instruction.member_id,
        amount=instruction.amount, adjustment_id=instruction.adjustment_id, attempt=instruction.attempt))
    revoked = await session.get(RevokedClaim, instruction.claim_id)
    if revoked is not None:
        # The file was already with the bank when the claim was revoked: what it paid is asked back.
        await add_recovery(session, f"revocation-late:{instruction.id}", instruction.claim_id,
                           instruction.member_id, instruction.period, instruction.amount, revoked.reason)


async def settle_failed(session: AsyncSession, instruction: Instruction, reason: str | None,
                        hold: timedelta) -> str:
    text = failure_text(reason)
    instruction.status, instruction.settled_at, instruction.failure_reason = "failed", datetime.now(UTC), text
    await publish(session, MESSAGING, TOPIC_PAYMENTS, PaymentFailed(
        instruction_id=str(instruction.id), claim_id=instruction.claim_id, member_id=instruction.member_id,
        reason=text, adjustment_id=instruction.adjustment_id, attempt=instruction.attempt))
    if await is_revoked(session, instruction.claim_id):
        await _reverse_approval(session, instruction)
    else:
        # The details may already have been corrected while the file was at the bank: pay again now.
        await retry(session, instruction, await session.get(Payee, instruction.member_id), hold)
    return text


async def _reverse_approval(session: AsyncSession, instruction: Instruction) -> None:
    await journal.post(session, instruction.period, ledger.approval_cancelled(instruction.amount),
                       f"cancelled:{instruction.claim_id}:{instruction.adjustment_id}",
                       f"撤销未付补助 claim {instruction.claim_id}")


async def add_recovery(session: AsyncSession, source: str, claim_id: str, member_id: str, period: str,
                       amount: Decimal, reason: str) -> None:
    inserted = (await session.execute(insert(Recovery).values(
        id=uuid.uuid4(), source=source, claim_id=claim_id, member_id=member_id, period=period, amount_due=amount,
        amount_recovered=Decimal("0.00"), reason=reason[:500],
    ).on_conflict_do_nothing(index_elements=["source"]).returning(Recovery.id))).first()
    if inserted is not None:
        await journal.post(session, period, ledger.recovery_due(amount), f"recovery_due:{source}",
                           f"应追回补助 claim {claim_id}")


async def void_batch(session: AsyncSession, batch: Batch, reason: str) -> None:
    """An unreleased batch lost a line (revocation): batches are immutable, so the whole cut is voided and its
    other lines go back to pending for the next cut (a batched line was pending or confirmed when cut); its file is never served."""
    batch.status, batch.voided_reason = "voided", reason[:200]
    await session.execute(update(Instruction).where(
        Instruction.batch_id == batch.id, Instruction.status == "batched").values(status="pending", batch_id=None))


async def revoke(session: AsyncSession, claim_id: str, member_id: str, period: str, reason: str) -> None:
    """claim.revoked (fraud, 除外责任): unpaid aid is cancelled, paid aid is asked back, nothing is retried."""
    inserted = (await session.execute(insert(RevokedClaim).values(
        claim_id=claim_id, member_id=member_id, period=period, reason=reason[:500],
    ).on_conflict_do_nothing().returning(RevokedClaim.claim_id))).first()
    if inserted is None:
        return
    newer = aliased(Instruction)
    chains = (await session.execute(select(Instruction).where(
        Instruction.claim_id == claim_id,
        ~select(newer.id).where(and_(newer.claim_id == Instruction.claim_id,
                                     newer.adjustment_id == Instruction.adjustment_id,
                                     newer.attempt > Instruction.attempt)).exists(),
    ).with_for_update())).scalars().all()
    paid = Decimal("0.00")
    for last in chains:
        if last.status == "batched":
            batch = await session.get(Batch, last.batch_id, with_for_update=True)
            if batch is not None and batch.status != "awaiting_release":
                continue  # the bank has the file: its result decides (paid -> recovery, failed -> reversal)
            if batch is not None:
                await void_batch(session, batch, f"撤销申请 {claim_id}")
            last.status, last.batch_id = "pending", None
        if last.status in (InstructionStatus.PENDING, InstructionStatus.HELD):
            last.status = InstructionStatus.CANCELLED
            await _reverse_approval(session, last)
        elif last.status == "failed":
            await _reverse_approval(session, last)
        elif last.status == "paid":
            paid += last.amount
    # What was paid, less what downward adjustments already asked back, is due back.
    already = sum((r.amount_due for r in (await session.execute(
        select(Recovery).where(Recovery.claim_id == claim_id))).scalars().all()), Decimal("0.00"))
    if paid - already > 0:
        await add_recovery(session, f"revocation:{claim_id}", claim_id, member_id, period, paid - already, reason)
