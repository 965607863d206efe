"""Deadlines in Chinese working days (第十条): the State Council's calendar, and Monday-Friday with a warning
for a year the calendar does not know yet."""

from __future__ import annotations

from datetime import date, timedelta

import chinese_calendar
import pytest

from services.claims.domain.workdays import add_working_days, is_working_day


def by_the_calendar(start: date, days: int) -> date:
    """The `days`-th working day after `start`, counted straight from chinesecalendar."""
    day, counted = start, 0
    while counted < days:
        day += timedelta(days=1)
        counted += chinese_calendar.is_workday(day)
    return day


def test_national_day_2026_is_seven_holidays_and_saturday_10_october_is_a_make_up_working_day() -> None:
    # The premise, per the State Council's 2026 schedule as chinesecalendar publishes it.
    assert [chinese_calendar.is_workday(date(2026, 10, d)) for d in range(1, 8)] == [False] * 7
    assert chinese_calendar.is_workday(date(2026, 10, 10)) and date(2026, 10, 10).weekday() == 5
    assert is_working_day(date(2026, 10, 10)) == (True, True)
    assert is_working_day(date(2026, 10, 5)) == (False, True)


@pytest.mark.parametrize(("start", "days", "due"), [
    (date(2026, 9, 30), 1, date(2026, 10, 8)),   # the whole holiday is skipped
    (date(2026, 9, 30), 3, date(2026, 10, 10)),  # Thu 8, Fri 9, then the make-up Saturday
    (date(2026, 9, 30), 4, date(2026, 10, 12)),  # Sunday 11 is a rest day again
    (date(2026, 9, 29), 5, date(2026, 10, 12)),
    (date(2026, 10, 1), 5, date(2026, 10, 13)),  # 8, 9, 10 (Sat), 12, 13
    (date(2026, 10, 9), 1, date(2026, 10, 10)),
])
def test_five_working_days_across_national_day_2026_follow_the_official_calendar(start: date, days: int,
                                                                                 due: date) -> None:
    result = add_working_days(start, days)
    assert result.due == due == by_the_calendar(start, days)
    assert result.warning is None


def test_every_start_in_september_and_october_2026_agrees_with_chinesecalendar() -> None:
    start = date(2026, 9, 1)
    while start <= date(2026, 10, 31):
        for days in (1, 5):
            assert add_working_days(start, days).due == by_the_calendar(start, days), (start, days)
        start += timedelta(days=1)


def test_the_start_day_itself_never_counts() -> None:
    assert add_working_days(date(2026, 10, 8), 1).due == date(2026, 10, 9)
    assert add_working_days(date(2026, 10, 8), 0).due == date(2026, 10, 8)


def test_a_year_without_official_data_falls_back_to_monday_to_friday_with_a_warning_naming_it() -> None:
    with pytest.raises(NotImplementedError):
        chinese_calendar.is_workday(date(2031, 1, 6))  # the premise: 2031 is not published yet
    result = add_working_days(date(2031, 1, 3), 5)  # a Friday
    assert result.due == date(2031, 1, 10)
    assert result.warning is not None and "2031" in result.warning
    # 1 October 2031 would be a holiday, but without data it is a plain Wednesday.
    assert add_working_days(date(2031, 9, 30), 1).due == date(2031, 10, 1)
    assert is_working_day(date(2031, 1, 4)) == (False, False)


def test_a_deadline_running_into_an_unknown_year_names_only_that_year() -> None:
    last_known = 2026
    while True:
        try:
            chinese_calendar.is_workday(date(last_known + 1, 6, 1))
        except NotImplementedError:
            break
        last_known += 1
    result = add_working_days(date(last_known, 12, 29), 5)
    assert result.due.year == last_known + 1
    assert result.warning is not None
    assert str(last_known + 1) in result.warning and str(last_known) not in result.warning
