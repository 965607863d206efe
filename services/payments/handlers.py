"""What payments learns from enrollment and claims (each event applied once, through the inbox)."""

from __future__ import annotations

import logging

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.payments import instructions, journal, ledger
from services.payments.models import FeesReceipt, Instruction, OfficeRemittance, Payee, UnitFees
from shared.events import (
    ClaimAdjusted,
    ClaimApproved,
    ClaimRevoked,
    Envelope,
    EventPayload,
    FeesReceived,
    FeesRemitted,
    MemberContactChanged,
    MemberCovered,
    MemberDetailsCorrected,
)
from shared.messaging import Handler
from shared.parking import ReferenceMissing

log = logging.getLogger(__name__)


async def member_covered(session: AsyncSession, _: Envelope, event: EventPayload) -> None:
    assert isinstance(event, MemberCovered)
    values = dict(member_id=event.member_id, name=event.name, bank_account=event.bank_account,
                  bank_name=event.bank_name, unit_path="/" + "/".join(event.unit_path),
                  member_version=event.member_version)
    # Details move only forward by the member's version: a late or replayed copy never undoes a change.
    await session.execute(insert(Payee).values(**values).on_conflict_do_update(
        index_elements=["member_id"], set_=values, where=Payee.member_version <= event.member_version))
    # The roster data the fees are reconciled against: this member's fee, in their unit and office.
    office = event.unit_path[1] if len(event.unit_path) > 1 else ""
    fees = dict(member_id=event.member_id, period=event.period, unit=event.unit, office=office, fee=event.fee)
    await session.execute(insert(UnitFees).values(**fees).on_conflict_do_update(
        index_elements=["member_id", "period"], set_=fees))
    await fill_payee(session, event.member_id)


async def _newer_details(session: AsyncSession, member_id: str, version: int, **values: str) -> None:
    known = await session.get(Payee, member_id, with_for_update=True)
    if known is None:
        raise ReferenceMissing(f"member:{member_id}")  # its member.covered has not arrived yet: wait for it
    if known.member_version > version:
        return  # an older change arriving late: the newer details stay
    await session.execute(update(Payee).where(Payee.member_id == member_id).values(
        member_version=version, **values))
    await instructions.retry_member(session, member_id)


async def contact_changed(session: AsyncSession, _: Envelope, event: EventPayload) -> None:
    """New bank details: a failed payment is retried to them as attempt n+1 (API.md PATCH members)."""
    assert isinstance(event, MemberContactChanged)
    await _newer_details(session, event.member_id, event.member_version, name=event.name,
                         bank_account=event.bank_account, bank_name=event.bank_name)


async def details_corrected(session: AsyncSession, _: Envelope, event: EventPayload) -> None:
    """A corrected name is the name the bank must see (a name mismatch, 户名不符, fails the transfer)."""
    assert isinstance(event, MemberDetailsCorrected)
    await _newer_details(session, event.member_id, event.member_version, name=event.name)


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
    if event.aid_amount <= 0 or await instructions.is_revoked(session, event.claim_id):
        return
    await instructions.approve(session, claim_id=event.claim_id, adjustment_id=instructions.AID,
                               member_id=event.member_id, period=event.period, amount=event.aid_amount)


async def claim_adjusted(session: AsyncSession, _: Envelope, event: EventPayload) -> None:
    """A re-assessed aid (claims' claim.adjusted): a top-up is paid as its own instruction; a reduction is taken
    off an aid not yet in any file, otherwise asked back as a recovery. History is never rewritten."""
    assert isinstance(event, ClaimAdjusted)
    if event.amount == 0 or await instructions.is_revoked(session, event.claim_id):
        return
    if event.amount > 0:
        await instructions.approve(session, claim_id=event.claim_id, adjustment_id=event.adjustment_id,
                                   member_id=event.member_id, period=event.period, amount=event.amount)
        return
    reduction = -event.amount
    pending = (await session.execute(select(Instruction).where(
        Instruction.claim_id == event.claim_id, Instruction.adjustment_id == instructions.AID,
        Instruction.status == "pending").with_for_update())).scalar_one_or_none()
    if pending is not None and pending.amount >= reduction:
        # Not yet sent to the bank: cancel it and issue attempt n+1 for the reduced aid (an instruction's amount
        # never changes); the ledger reverses the old approval and records the new one.
        source = f"adjustment:{event.adjustment_id}"
        if not await journal.post(session, event.period, ledger.approval_cancelled(reduction), source,
                                  f"核减未付补助 claim {event.claim_id}"):
            return
        pending.status = "cancelled"
        await session.flush()
        if pending.amount == reduction:
            return
        await instructions.create(
            session, claim_id=event.claim_id, adjustment_id=instructions.AID, attempt=pending.attempt + 1,
            member_id=pending.member_id, period=pending.period, amount=pending.amount - reduction,
            payee=await session.get(Payee, pending.member_id))
        return
    await instructions.add_recovery(session, f"adjustment:{event.adjustment_id}", event.claim_id, event.member_id,
                                    event.period, reduction, event.reason)


async def claim_revoked(session: AsyncSession, _: Envelope, event: EventPayload) -> None:
    assert isinstance(event, ClaimRevoked)
    await instructions.revoke(session, event.claim_id, event.member_id, event.period, event.reason)


async def fees_received(session: AsyncSession, envelope: Envelope, event: EventPayload) -> None:
    """A unit's fees reached the fund: into the ledger (bank / fees_received) and the reconciliation data."""
    assert isinstance(event, FeesReceived)
    inserted = (await session.execute(insert(FeesReceipt).values(
        event_id=envelope.event_id, roster_id=event.roster_id, period=event.period, unit=event.unit,
        office=event.unit_path[1] if len(event.unit_path) > 1 else None,
        amount=event.amount, reference=event.reference[:100],
    ).on_conflict_do_nothing().returning(FeesReceipt.event_id))).first()
    if inserted is not None and event.amount > 0:
        await journal.post(session, event.period, ledger.fees_received(event.amount), f"fees:{envelope.event_id}",
                           f"会费到账 roster {event.roster_id} unit {event.unit}")


async def fees_remitted(session: AsyncSession, _: Envelope, event: EventPayload) -> None:
    """An office's transfer to the centre: reconciliation data only. The fees were already booked when the
    units paid (roster.fees_received); the transfer moves them between the union's own accounts."""
    assert isinstance(event, FeesRemitted)
    await session.execute(insert(OfficeRemittance).values(
        remittance_id=event.remittance_id, period=event.period, office=event.office, amount=event.amount,
        reference=event.reference[:100], remitted_at=event.remitted_at).on_conflict_do_nothing())


HANDLERS: dict[str, Handler] = {
    MemberCovered.TYPE: member_covered,
    MemberContactChanged.TYPE: contact_changed,
    MemberDetailsCorrected.TYPE: details_corrected,
    FeesReceived.TYPE: fees_received,
    FeesRemitted.TYPE: fees_remitted,
    ClaimApproved.TYPE: claim_approved,
    ClaimAdjusted.TYPE: claim_adjusted,
    ClaimRevoked.TYPE: claim_revoked,
}
