"""A claim's clock (issue #12 §7): whole days from the discharge to its submission, its final approval and its
payment, each counted on the service's calendar day (``approval.day_of``), so a reviewer, the member and the
dashboards read the same figures. Pure: the instants are passed in; a step not reached yet is None."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from services.claims.domain.approval import day_of

__all__ = ["Clock", "claim_clock"]


@dataclass(frozen=True)
class Clock:
    days_to_submission: int | None
    days_to_approval: int | None
    days_to_payment: int | None


def claim_clock(discharge: date, submitted_at: datetime | None, approved_at: datetime | None,
                paid_at: datetime | None) -> Clock:
    def days(at: datetime | None) -> int | None:
        # a settlement dated after the stay's end by the bureau's clock still counts as day 0, never negative
        return None if at is None else max(0, (day_of(at) - discharge).days)

    return Clock(days(submitted_at), days(approved_at), days(paid_at))
