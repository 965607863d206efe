"""Deadlines in Chinese working days (第十条: settled within 5 working days).

Working days follow the State Council's adjusted holidays as published in the maintained
``chinesecalendar`` package. A year it has no data for falls back to Monday-Friday and says so in the
result's ``warning``: never a crash, never a silent guess.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import chinese_calendar


@dataclass(frozen=True)
class DueDate:
    due: date
    warning: str | None = None


def is_working_day(day: date) -> tuple[bool, bool]:
    """(is it a working day, was the official calendar known for that year)."""
    try:
        return bool(chinese_calendar.is_workday(day)), True
    except NotImplementedError:
        return day.weekday() < 5, False


def add_working_days(start: date, days: int) -> DueDate:
    """The ``days``-th working day after ``start`` (the day the claim reached its level does not count)."""
    day, counted, unknown_years = start, 0, set()
    while counted < days:
        day += timedelta(days=1)
        working, known = is_working_day(day)
        if not known:
            unknown_years.add(day.year)
        if working:
            counted += 1
    warning = None
    if unknown_years:
        years = "、".join(str(y) for y in sorted(unknown_years))
        warning = f"{years} 年的法定节假日安排尚未录入，截止日期按周一至周五计算。"
    return DueDate(due=day, warning=warning)
