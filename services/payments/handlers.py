"""What payments learns from enrollment and claims (each event applied once, through the inbox)."""

from __future__ import annotations

import uuid

from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.payments.models import MESSAGING, Instruction, Payee
from shared.events import (
    TOPIC_PAYMENTS,
    ClaimApproved,
    Envelope,
    EventPayload,
    MemberContactChanged,
    MemberCovered,
    MemberDetailsCorrected,
    PaymentInstructionCreated,
)
from shared.messaging import Handler, publish


async def member_covered(session: AsyncSession, _: Envelope, event: EventPayload) -> None:
    assert isinstance(event, MemberCovered)
    values = dict(member_id=event.member_id, name=event.name, bank_account=event.bank_account,
                  bank_name=event.bank_name, unit_path="/" + "/".join(event.unit_path))
    await session.execute(insert(Payee).values(**values).on_conflict_do_update(
        index_elements=["member_id"], set_=values))
    await fill_payee(session, event.member_id)


async def contact_changed(session: AsyncSession, _: Envelope, event: EventPayload) -> None:
    assert isinstance(event, MemberContactChanged)
    await session.execute(update(Payee).where(Payee.member_id == event.member_id).values(
        name=event.name, bank_account=event.bank_account, bank_name=event.bank_name))


async def details_corrected(session: AsyncSession, _: Envelope, event: EventPayload) -> None:
    """A corrected name is the name the bank must see (a name mismatch fails the transfer)."""
    assert isinstance(event, MemberDetailsCorrected)
    await session.execute(update(Payee).where(Payee.member_id == event.member_id).values(name=event.name))
    await session.execute(update(Instruction).where(Instruction.member_id == event.member_id,
                                                    Instruction.status == "pending").values(payee_name=event.name))


async def fill_payee(session: AsyncSession, member_id: str) -> None:
    """Instructions created before the payee's details arrived get them now (topics are not ordered together)."""
    payee = await session.get(Payee, member_id)
    if payee is not None:
        await session.execute(update(Instruction).where(
            Instruction.member_id == member_id, Instruction.status == "pending", Instruction.account.is_(None),
        ).values(payee_name=payee.name, account=payee.bank_account, bank_name=payee.bank_name))


async def claim_approved(session: AsyncSession, _: Envelope, event: EventPayload) -> None:
    """One instruction per approved claim with aid > 0; aid 0 creates none (API.md)."""
    assert isinstance(event, ClaimApproved)
    if event.aid_amount <= 0:
        return
    payee = await session.get(Payee, event.member_id)
    instruction_id = uuid.uuid4()
    # (claim_id, attempt=1) is unique: even if the inbox were bypassed, a second approval inserts nothing.
    inserted = (await session.execute(
        insert(Instruction).values(
            id=instruction_id, claim_id=event.claim_id, attempt=1, member_id=event.member_id, period=event.period,
            amount=event.aid_amount, status="pending",
            payee_name=payee.name if payee else None, account=payee.bank_account if payee else None,
            bank_name=payee.bank_name if payee else None,
        ).on_conflict_do_nothing().returning(Instruction.id)
    )).first()
    if inserted is None:
        return
    await publish(session, MESSAGING, TOPIC_PAYMENTS, PaymentInstructionCreated(
        instruction_id=str(instruction_id), claim_id=event.claim_id, member_id=event.member_id, attempt=1,
        amount=event.aid_amount))


HANDLERS: dict[str, Handler] = {
    MemberCovered.TYPE: member_covered,
    MemberContactChanged.TYPE: contact_changed,
    MemberDetailsCorrected.TYPE: details_corrected,
    ClaimApproved.TYPE: claim_approved,
}
