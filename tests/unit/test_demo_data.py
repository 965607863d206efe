"""make run's demo: next year's period has its enrolment window open on any day it is loaded (issue #8 §7)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from deploy.demo_data import demo_period_code, enrolment_period_code, enrolment_period_document
from shared.rulebook import parse_rulebook


@pytest.mark.parametrize("today", [date(2026, 11, 23), date(2026, 12, 28), date(2027, 1, 2), date(2027, 3, 1),
                                   date(2028, 2, 29), date(2026, 6, 30)])
def test_next_years_period_is_open_for_enrolment_today_and_renews_from_this_years(today: date) -> None:
    rulebook = parse_rulebook(enrolment_period_document(today))  # a valid rulebook, as the API will take it
    window = rulebook.windows.enrolment
    assert window.from_ <= today - timedelta(days=5) and window.to >= today + timedelta(days=60)
    assert rulebook.code == enrolment_period_code(today.year) == f"yn-19-{today.year + 1}"
    assert rulebook.previous_period == demo_period_code(today.year)
    # Cover is next year's; a payment dated today lies inside the window (第五条).
    assert rulebook.windows.coverage.from_ == date(today.year + 1, 1, 1)
    assert rulebook.enrolment.retirees_must_renew is True


def test_the_window_keeps_the_rulebooks_own_end_when_it_is_later() -> None:
    window = parse_rulebook(enrolment_period_document(date(2026, 12, 22))).windows.enrolment
    assert (window.from_, window.to) == (date(2026, 12, 17), date(2027, 2, 25))  # yunnan-19 ends on 25 Feb
