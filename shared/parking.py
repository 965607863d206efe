"""Events whose reference is not known yet wait; they are never refused for good (issue #11, item 3).

Topics are not ordered together: a member's ``member.coverage_ended`` may reach claims before the
``member.covered`` it ends, a ``member.contact_changed`` may reach payments before the payee exists. A handler
that finds such a hole raises :class:`ReferenceMissing` naming the reference (``member:<id>``,
``coverage:<member>:<period>``, ``period:<code>``, ``claim:<id>``). The consumer rolls the handler's work back,
parks the event in ``parked_events`` with a backoff, commits the Kafka offset, and applies the event again

- at once when an event providing that reference has been applied (:func:`provides`), or
- when its backoff has passed (1 s, 2 s, 4 s ... at most ``MAX_BACKOFF``), whichever comes first.

The inbox row is written only when the event is finally applied, so it is applied once.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Column, DateTime, Index, Integer, MetaData, String, Table, Text, func
from sqlalchemy.dialects.postgresql import JSONB, UUID

from shared.events import (
    ClaimApproved,
    ClaimSubmitted,
    EventPayload,
    MemberCovered,
    PeriodPublished,
)

MAX_BACKOFF = timedelta(seconds=60)


class ReferenceMissing(Exception):
    """The event refers to something this service has not learnt yet: park it and apply it later."""

    def __init__(self, reference: str, detail: str = "") -> None:
        super().__init__(detail or f"{reference} not known yet")
        self.reference = reference


def backoff(attempts: int) -> timedelta:
    """1 s after the first refusal, doubling, capped (a reference that arrives wakes the event at once)."""
    return min(timedelta(seconds=2 ** max(attempts - 1, 0)), MAX_BACKOFF)


def provides(payload: EventPayload) -> list[str]:
    """The references an applied event makes known (parked events waiting for them are woken)."""
    match payload:
        case PeriodPublished():
            return [f"period:{payload.period}"]
        case MemberCovered():
            return [f"member:{payload.member_id}", f"coverage:{payload.member_id}:{payload.period}"]
        case ClaimSubmitted() | ClaimApproved():
            return [f"claim:{payload.claim_id}"]
    return []


def parked_table(metadata: MetaData) -> Table:
    return Table(
        "parked_events",
        metadata,
        Column("consumer", String(100), primary_key=True),
        Column("event_id", UUID(as_uuid=True), primary_key=True),
        Column("type", String(100), nullable=False),
        Column("reference", String(200), nullable=False),
        Column("envelope", JSONB, nullable=False),
        Column("attempts", Integer, nullable=False, server_default="1"),
        Column("reason", Text, nullable=False, server_default=""),
        Column("parked_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("next_attempt_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Index("ix_parked_events_due", "consumer", "next_attempt_at"),
        Index("ix_parked_events_reference", "consumer", "reference"),
    )
