"""What payments learns from enrollment and claims (each event applied once, through the inbox)."""

from __future__ import annotations

import logging
from datetime import timedelta
from functools import partial

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.payments import instructions, journal, ledger
from services.payments.models import FeesReceipt, Instruction, InstructionStatus, OfficeRemittance, Payee, UnitFees
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
from shared.settings import PaymentsSettings

log = logging.getLogger(__name__)


async def member_covered(session: AsyncSession, envelope: Envelope, event: EventPayload, *,
                         hold: timedelta) -> None:
    assert isinstance(event, MemberCovered)
    known = await session.get(Payee, event.member_id, with_for_update=True)
    if known is not None and known.member_version <= event.member_version and \
            (known.bank_account, known.bank_name) != (event.bank_account, event.bank_name):
        # Any account a payee did not have before is a new account, whichever event brought it: held.
        known.account_changed_at = max(known.account_changed_at or envelope.occurred_at, envelope.occurred_at)
        await session.flush()
    values = dict(member_id=event.member_id, name=event.name, bank_account=event.bank_account,
                  bank_name=event.bank_name, unit_path="/" + "/".join(event.unit_path),
                  member_version=event.member_version)
    # Details move only forward by the member's version: a late or replayed copy never undoes a change.
    await session.execute(insert(Payee).values(**values).on_conflict_do_update(
        index_elements=["member_id"], set_=values, where=Payee.member_version <= event.member_version))
    if known is not None:
        session.expire(known)  # the upsert changed the row under the loaded object
    # The roster data the fees are reconciled against: this member's fee, in their unit and office.
    office = event.unit_path[1] if len(event.unit_path) > 1 else ""
    fees = dict(member_id=event.member_id, period=event.period, unit=event.unit, office=office, fee=event.fee)
    await session.execute(insert(UnitFees).values(**fees).on_conflict_do_update(
        index_elements=["member_id", "period"], set_=fees))
    await fill_payee(session, event.member_id, hold)


async def _newer_details(session: AsyncSession, envelope: Envelope, member_id: str, version: int, *,
                         hold: timedelta, changed_by: str = "", **values: str) -> None:
    """Details move only forward by the member's version (an older change arriving late changes nothing). A new
    account (or bank) marks the payee as changed at the event's time, by its author: every payment to it in the
    next ``hold`` is held until a finance officer other than that person confirms it."""
    known = await session.get(Payee, member_id, with_for_update=True)
    if known is None:
        raise ReferenceMissing(f"member:{member_id}")  # its member.covered has not arrived yet: wait for it
    if known.member_version > version:
        return
    if "bank_account" in values and (known.bank_account, known.bank_name) != (values["bank_account"],
                                                                             values["bank_name"]):
        if known.account_changed_at is None or known.account_changed_at < envelope.occurred_at:
            known.account_changed_at, known.account_changed_by = envelope.occurred_at, changed_by or None
    known.member_version = version
    for key, value in values.items():
        setattr(known, key, value)
    await session.flush()
    await instructions.retry_member(session, member_id, hold)


async def contact_changed(session: AsyncSession, envelope: Envelope, event: EventPayload, *,
                          hold: timedelta) -> None:
    """New bank details: a failed payment is retried to them as attempt n+1 (docs/API.md PATCH members)."""
    assert isinstance(event, MemberContactChanged)
    await _newer_details(session, envelope, event.member_id, event.member_version, hold=hold,
                         changed_by=event.changed_by, name=event.name, bank_account=event.bank_account,
                         bank_name=event.bank_name)


async def details_corrected(session: AsyncSession, envelope: Envelope, event: EventPayload, *,
                            hold: timedelta) -> None:
    """A corrected name is the name the bank must see (a name mismatch, 户名不符, fails the transfer)."""
    assert isinstance(event, MemberDetailsCorrected)
    await _newer_details(session, envelope, event.member_id, event.member_version, hold=hold, name=event.name)


async def fill_payee(session: AsyncSession, member_id: str, hold: timedelta) -> None:
    """Instructions created before the payee's details arrived get them now (topics are not ordered together),
    held if the account is a new one."""
    payee = await session.get(Payee, member_id)
    if payee is not None:
        held = instructions.hold_reason(payee, hold)
        await session.execute(update(Instruction).where(
            Instruction.member_id == member_id, Instruction.status == InstructionStatus.PENDING,
            Instruction.account.is_(None),
        ).values(payee_name=payee.name, account=payee.bank_account, bank_name=payee.bank_name,
                 **({"status": InstructionStatus.HELD, "hold_reason": held} if held else {})))


async def claim_approved(session: AsyncSession, _: Envelope, event: EventPayload, *, hold: timedelta) -> None:
    """One instruction per approved claim with aid > 0; aid 0 creates none (docs/API.md)."""
    assert isinstance(event, ClaimApproved)
    if event.aid_amount <= 0 or await instructions.is_revoked(session, event.claim_id):
        return
    await instructions.approve(session, claim_id=event.claim_id, adjustment_id=instructions.AID,
                               member_id=event.member_id, period=event.period, amount=event.aid_amount,
                               hold=hold)


async def claim_adjusted(session: AsyncSession, _: Envelope, event: EventPayload, *, hold: timedelta) -> None:
    """A re-assessed aid (claims' claim.adjusted): a top-up is paid as its own instruction; a reduction is taken
    off an aid not yet in any file, otherwise asked back as a recovery. History is never rewritten."""
    assert isinstance(event, ClaimAdjusted)
    if event.amount == 0 or await instructions.is_revoked(session, event.claim_id):
        return
    if event.amount > 0:
        await instructions.approve(session, claim_id=event.claim_id, adjustment_id=event.adjustment_id,
                                   member_id=event.member_id, period=event.period, amount=event.amount,
                                   hold=hold)
        return
    reduction = -event.amount
    pending = (await session.execute(select(Instruction).where(
        Instruction.claim_id == event.claim_id, Instruction.adjustment_id == instructions.AID,
        Instruction.status.in_((InstructionStatus.PENDING, InstructionStatus.HELD))).with_for_update()
    )).scalar_one_or_none()
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
            payee=await session.get(Payee, pending.member_id), hold=hold)
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


def handlers(settings: PaymentsSettings) -> dict[str, Handler]:
    """The handlers, those that may create or re-route a payment bound to the hold of a new account."""
    hold = timedelta(days=settings.account_change_hold_days)
    return {
        MemberCovered.TYPE: partial(member_covered, hold=hold),
        MemberContactChanged.TYPE: partial(contact_changed, hold=hold),
        MemberDetailsCorrected.TYPE: partial(details_corrected, hold=hold),
        FeesReceived.TYPE: fees_received,
        FeesRemitted.TYPE: fees_remitted,
        ClaimApproved.TYPE: partial(claim_approved, hold=hold),
        ClaimAdjusted.TYPE: partial(claim_adjusted, hold=hold),
        ClaimRevoked.TYPE: claim_revoked,
    }
