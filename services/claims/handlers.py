"""What claims learns from other services' events (each applied once, through the inbox)."""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.claims.models import Claim, Coverage, PeriodCopy
from services.claims.reassessment import reassess_period
from shared.events import (
    CoverageEnded,
    Envelope,
    EventPayload,
    MemberCovered,
    MemberDetailsCorrected,
    PaymentFailed,
    PaymentInstructionCreated,
    PaymentSettled,
    PeriodPublished,
)
from shared.messaging import Handler


async def period_published(session: AsyncSession, _: Envelope, event: EventPayload) -> None:
    """A period's rulebook, or a correction of it: then every member's live stays in the period are assessed
    again under the corrected rules, each difference an adjustment (never a silent change of history)."""
    assert isinstance(event, PeriodPublished)
    known = await session.get(PeriodCopy, event.period, with_for_update=True)
    if known is not None and known.revision >= event.revision:
        return  # an older or the same revision arriving late changes nothing
    stmt = insert(PeriodCopy).values(code=event.period, rulebook=event.rulebook, revision=event.revision)
    await session.execute(stmt.on_conflict_do_update(index_elements=["code"], set_={
        "rulebook": event.rulebook, "revision": event.revision}))
    if known is None:
        return
    await session.flush()
    session.expire(known)
    await reassess_period(session, event.period, f"规则书更正（第 {event.revision} 版）：{event.reason}")


async def member_covered(session: AsyncSession, _: Envelope, event: EventPayload) -> None:
    assert isinstance(event, MemberCovered)
    values = dict(member_id=event.member_id, period=event.period, plans=event.plans,
                  coverage_from=event.coverage_from, coverage_to=event.coverage_to, ended_on=None,
                  certno=event.certno, name=event.name, sex=event.sex, unit=event.unit, unit_path=event.unit_path)
    stmt = insert(Coverage).values(**values)
    await session.execute(stmt.on_conflict_do_update(index_elements=["member_id", "period"], set_=values))


async def coverage_ended(session: AsyncSession, _: Envelope, event: EventPayload) -> None:
    assert isinstance(event, CoverageEnded)
    await session.execute(update(Coverage).where(Coverage.member_id == event.member_id,
                                                 Coverage.period == event.period).values(ended_on=event.ended_on))


async def details_corrected(session: AsyncSession, _: Envelope, event: EventPayload) -> None:
    assert isinstance(event, MemberDetailsCorrected)
    await session.execute(update(Coverage).where(Coverage.member_id == event.member_id).values(
        name=event.name, certno=event.certno, sex=event.sex))


async def instruction_created(session: AsyncSession, _: Envelope, event: EventPayload) -> None:
    """The claim's own aid has an instruction (a new attempt after a failure puts it back to approved).
    Top-ups of an adjustment are payments' business and leave the claim's own payment alone."""
    assert isinstance(event, PaymentInstructionCreated)
    if event.adjustment_id:
        return
    await session.execute(update(Claim).where(Claim.id == event.claim_id).values(
        payment_instruction_id=event.instruction_id, payment_status="pending"))
    await session.execute(update(Claim).where(Claim.id == event.claim_id, Claim.status == "payment_failed")
                          .values(status="approved"))


async def payment_paid(session: AsyncSession, _: Envelope, event: EventPayload) -> None:
    assert isinstance(event, PaymentSettled)
    if event.adjustment_id:
        return
    await session.execute(update(Claim).where(Claim.id == event.claim_id, Claim.status.in_(
        ["approved", "payment_failed"])).values(status="paid", payment_status="paid",
                                                 payment_instruction_id=event.instruction_id))


async def payment_failed(session: AsyncSession, _: Envelope, event: EventPayload) -> None:
    assert isinstance(event, PaymentFailed)
    if event.adjustment_id:
        return
    # Only the live attempt decides: a late result for an attempt already replaced changes nothing.
    await session.execute(update(Claim).where(
        Claim.id == event.claim_id, Claim.status == "approved",
        Claim.payment_instruction_id == event.instruction_id).values(status="payment_failed", payment_status="failed"))


HANDLERS: dict[str, Handler] = {
    PeriodPublished.TYPE: period_published,
    MemberCovered.TYPE: member_covered,
    CoverageEnded.TYPE: coverage_ended,
    MemberDetailsCorrected.TYPE: details_corrected,
    PaymentInstructionCreated.TYPE: instruction_created,
    PaymentSettled.TYPE: payment_paid,
    PaymentFailed.TYPE: payment_failed,
}
