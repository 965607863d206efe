"""A claim's clock (issue #12 §7): days from the discharge, on the service's calendar day, null until reached."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from services.claims.domain.clock import Clock, claim_clock

CST = timezone(timedelta(hours=8))


def test_days_from_the_discharge_to_each_mark() -> None:
    discharge = date(2026, 3, 2)
    clock = claim_clock(discharge, datetime(2026, 3, 9, 10, 0, tzinfo=CST), datetime(2026, 3, 16, 9, 0, tzinfo=CST),
                        datetime(2026, 3, 30, 15, 0, tzinfo=CST))
    local = [(datetime(2026, 3, d, h, 0, tzinfo=CST).astimezone().date() - discharge).days
             for d, h in ((9, 10), (16, 9), (30, 15))]
    assert clock == Clock(*local)


def test_marks_not_reached_are_none_and_a_same_day_submission_is_zero() -> None:
    discharge = date(2026, 5, 4)
    at = datetime(2026, 5, 4, 12, 0).astimezone()  # noon of the discharge day, in the service's zone
    assert claim_clock(discharge, at, None, None) == Clock(0, None, None)
    assert claim_clock(discharge, None, None, None) == Clock(None, None, None)


def test_never_negative() -> None:
    early = datetime(2026, 5, 1, 12, 0).astimezone()
    assert claim_clock(date(2026, 5, 4), early, None, None).days_to_submission == 0
