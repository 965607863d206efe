"""What claims learns from other services' events (each applied once, through the inbox)."""

from __future__ import annotations

import uuid

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.claims.models import Claim, Coverage, HistoryCoverage, LoyaltyCover, PeriodCopy
from services.claims.reassessment import LIVE, reassess_period
from shared.events import (
    CoverageEnded,
    Envelope,
    EventPayload,
    LoyaltyGranted,
    LoyaltyRevoked,
    MemberCovered,
    MemberDetailsCorrected,
    PaymentFailed,
    PaymentInstructionCreated,
    PaymentSettled,
    PeriodHistoryRecorded,
    PeriodPublished,
)
from shared.messaging import Handler, PoisonEvent
from shared.parking import ReferenceMissing
from shared.vocab import ClaimStatus, InstructionStatus


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
    """A coverage is written once per (member, period); identity fields move only forward by the member's
    version, and an end already recorded (member.coverage_ended) is never undone by a late or replayed copy."""
    assert isinstance(event, MemberCovered)
    values = dict(member_id=event.member_id, period=event.period, plans=event.plans,
                  coverage_from=event.coverage_from, coverage_to=event.coverage_to, ended_on=None,
                  certno=event.certno, name=event.name, sex=event.sex, unit=event.unit, unit_path=event.unit_path,
                  member_version=event.member_version, shares=event.shares)
    stmt = insert(Coverage).values(**values)
    await session.execute(stmt.on_conflict_do_update(
        index_elements=["member_id", "period"],
        set_={k: v for k, v in values.items() if k not in ("member_id", "period", "ended_on")},
        where=Coverage.member_version <= event.member_version))
    await add_granted_plans(session, event.member_id, event.period)  # a copy of the coverage keeps its grants
    # The member's other coverages learn newer identity details too (the same person in every period).
    await session.execute(update(Coverage).where(
        Coverage.member_id == event.member_id, Coverage.member_version < event.member_version).values(
        name=event.name, certno=event.certno, sex=event.sex, member_version=event.member_version))


async def add_granted_plans(session: AsyncSession, member_id: str, period: str) -> None:
    """The plans 第十五条 granted the member in the period (and not withdrawn), added to their coverage of it
    (once each)."""
    granted = (await session.execute(select(LoyaltyCover.plan).where(
        LoyaltyCover.member_id == member_id, LoyaltyCover.period == period,
        LoyaltyCover.withdrawn.is_(False)))).scalars().all()
    if not granted:  # most members: nothing to add, the coverage is not read again
        return
    coverage = await session.get(Coverage, (member_id, period), with_for_update=True, populate_existing=True)
    if coverage is None:
        return
    missing = [plan for plan in granted if plan not in coverage.plans]
    if missing:
        coverage.plans = [*coverage.plans, *missing]


async def loyalty_granted(session: AsyncSession, _: Envelope, event: EventPayload) -> None:
    """第十五条: the cover enrollment granted is a plan of the member's coverage in the period, claimed like any
    other (a graded plan: plan_claims.py). Kept by (member, period, plan), so a grant arriving before the
    coverage, twice, or followed by a later copy of the coverage is never lost; a grant older than the
    withdrawal already applied (version) changes nothing."""
    assert isinstance(event, LoyaltyGranted)
    known = await session.get(LoyaltyCover, (event.member_id, event.period, event.grant), with_for_update=True)
    if known is None:
        session.add(LoyaltyCover(member_id=event.member_id, period=event.period, plan=event.grant,
                                 periods_without_aid=list(event.periods_without_aid), version=event.version))
    elif known.version < event.version:
        known.periods_without_aid, known.version, known.withdrawn = list(event.periods_without_aid), event.version, False
    await session.flush()
    await add_granted_plans(session, event.member_id, event.period)


async def loyalty_revoked(session: AsyncSession, _: Envelope, event: EventPayload) -> None:
    """Enrollment withdrew the grant (aid found later in its chain): the plan leaves the member's coverage of the
    period, unless a claim on it already exists: then the cover stays, for that claim and any other in the
    period, and the withdrawal is only recorded (its version). A withdrawal before the grant is kept, so the
    older grant arriving late adds nothing."""
    assert isinstance(event, LoyaltyRevoked)
    key = (event.member_id, event.period, event.grant)
    known = await session.get(LoyaltyCover, key, with_for_update=True)
    if known is not None and known.version >= event.version:
        return
    used = (await session.execute(select(Claim.id).where(
        Claim.member_id == event.member_id, Claim.period == event.period, Claim.plan == event.grant,
        Claim.status.in_(LIVE)).limit(1))).first() is not None  # a live claim on the cover: it was used
    if known is None:
        session.add(LoyaltyCover(member_id=event.member_id, period=event.period, plan=event.grant,
                                 periods_without_aid=list(event.periods_without_aid), version=event.version,
                                 withdrawn=True))
        return
    known.version = event.version
    if used:
        return
    known.withdrawn = True
    coverage = await session.get(Coverage, (event.member_id, event.period), with_for_update=True)
    if coverage is not None and event.grant in coverage.plans:
        coverage.plans = [plan for plan in coverage.plans if plan != event.grant]


async def history_recorded(session: AsyncSession, _: Envelope, event: EventPayload) -> None:
    """People covered in a period run on paper: kept by ID number, for years of participation (seed 000)."""
    assert isinstance(event, PeriodHistoryRecorded)
    if event.certnos:
        await session.execute(insert(HistoryCoverage).values(
            [{"period": event.period, "certno": c} for c in sorted(set(event.certnos))]).on_conflict_do_nothing())


async def coverage_ended(session: AsyncSession, _: Envelope, event: EventPayload) -> None:
    """The end of a coverage claims has not heard of yet waits for it (shared.parking)."""
    assert isinstance(event, CoverageEnded)
    ended = (await session.execute(update(Coverage).where(
        Coverage.member_id == event.member_id, Coverage.period == event.period).values(
        ended_on=event.ended_on).returning(Coverage.member_id))).first()
    if ended is None:
        raise ReferenceMissing(f"coverage:{event.member_id}:{event.period}")


async def details_corrected(session: AsyncSession, _: Envelope, event: EventPayload) -> None:
    assert isinstance(event, MemberDetailsCorrected)
    known = (await session.execute(select(Coverage.member_id).where(
        Coverage.member_id == event.member_id).limit(1))).first()
    if known is None:
        raise ReferenceMissing(f"member:{event.member_id}")
    await session.execute(update(Coverage).where(
        Coverage.member_id == event.member_id, Coverage.member_version <= event.member_version).values(
        name=event.name, certno=event.certno, sex=event.sex, member_version=event.member_version))


# A claim's payment state is written by three events on two keys (instruction vs batch), so it moves only
# forward: paid is final; otherwise a later attempt wins, and within an attempt its result wins over its
# creation. A late or replayed event with a lower rank changes nothing (issue #11).
PAYMENT_STATUS_OF_CLAIM: dict[str, ClaimStatus] = {
    InstructionStatus.PENDING: ClaimStatus.APPROVED, InstructionStatus.FAILED: ClaimStatus.PAYMENT_FAILED,
    InstructionStatus.PAID: ClaimStatus.PAID}
FOLLOWS_PAYMENT = (ClaimStatus.APPROVED, ClaimStatus.PAYMENT_FAILED, ClaimStatus.PAID)


def payment_rank(status: str | None, attempt: int | None) -> tuple[int, int, int]:
    if status is None:
        return (0, -1, 0)
    return (1 if status == InstructionStatus.PAID else 0, attempt or 0, 0 if status == InstructionStatus.PENDING else 1)


async def move_payment(session: AsyncSession, claim_id: str, instruction_id: str, attempt: int,
                       status: str) -> None:
    try:
        key = uuid.UUID(claim_id)
    except ValueError:
        raise PoisonEvent(f"claim_id {claim_id!r} is not a claim id") from None
    claim = await session.get(Claim, key, with_for_update=True)
    if claim is None:
        raise ReferenceMissing(f"claim:{claim_id}")
    if attempt <= 0:  # an event from an older producer: only the live instruction's attempt is known
        if instruction_id != claim.payment_instruction_id and status != InstructionStatus.PAID:
            return
        attempt = claim.payment_attempt or 1
    if payment_rank(status, attempt) <= payment_rank(claim.payment_status, claim.payment_attempt):
        return
    claim.payment_status, claim.payment_attempt, claim.payment_instruction_id = status, attempt, instruction_id
    if claim.status in FOLLOWS_PAYMENT:
        claim.status = PAYMENT_STATUS_OF_CLAIM[status]


async def instruction_created(session: AsyncSession, _: Envelope, event: EventPayload) -> None:
    """The claim's own aid has an instruction (a new attempt after a failure puts it back to approved).
    Top-ups of an adjustment are payments' business and leave the claim's own payment alone."""
    assert isinstance(event, PaymentInstructionCreated)
    if event.adjustment_id:
        return
    await move_payment(session, event.claim_id, event.instruction_id, event.attempt, InstructionStatus.PENDING)


async def payment_paid(session: AsyncSession, _: Envelope, event: EventPayload) -> None:
    assert isinstance(event, PaymentSettled)
    if event.adjustment_id:
        return
    await move_payment(session, event.claim_id, event.instruction_id, event.attempt, InstructionStatus.PAID)


async def payment_failed(session: AsyncSession, _: Envelope, event: EventPayload) -> None:
    assert isinstance(event, PaymentFailed)
    if event.adjustment_id:
        return
    await move_payment(session, event.claim_id, event.instruction_id, event.attempt, InstructionStatus.FAILED)


HANDLERS: dict[str, Handler] = {
    PeriodPublished.TYPE: period_published,
    PeriodHistoryRecorded.TYPE: history_recorded,
    MemberCovered.TYPE: member_covered,
    LoyaltyGranted.TYPE: loyalty_granted,
    LoyaltyRevoked.TYPE: loyalty_revoked,
    CoverageEnded.TYPE: coverage_ended,
    MemberDetailsCorrected.TYPE: details_corrected,
    PaymentInstructionCreated.TYPE: instruction_created,
    PaymentSettled.TYPE: payment_paid,
    PaymentFailed.TYPE: payment_failed,
}
