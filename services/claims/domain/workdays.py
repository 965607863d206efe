"""Deadlines in Chinese working days (第十条: settled within 5 working days).

Working days follow the State Council's adjusted holidays. The service keeps its own calendar (table
``calendar_years`` / ``calendar_days``), seeded from the maintained ``chinesecalendar`` package and updated
by an admin each year (``POST /api/v1/calendar/{year}``); this module reads it as a :class:`WorkCalendar`.
Without one (``calendar=None``) ``chinesecalendar`` itself is asked. A year with no data falls back to
Monday-Friday and says so in the result's ``warning``: never a crash, never a silent guess.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta

import chinese_calendar


@dataclass(frozen=True)
class DueDate:
    due: date
    warning: str | None = None


@dataclass(frozen=True)
class WorkCalendar:
    """The official calendar for the ``years`` it knows: days off (``holidays``, named) and make-up working
    days on weekends (``workdays``, 调休上班). Any other day is a working day from Monday to Friday."""

    years: frozenset[int] = frozenset()
    holidays: dict[date, str] = field(default_factory=dict)
    workdays: dict[date, str] = field(default_factory=dict)

    def is_working_day(self, day: date) -> tuple[bool, bool]:
        """(is it a working day, was the official calendar known for that year)."""
        if day.year not in self.years:
            return day.weekday() < 5, False
        if day in self.workdays:
            return True, True
        if day in self.holidays:
            return False, True
        return day.weekday() < 5, True


def chinesecalendar_years() -> list[int]:
    """The years the installed ``chinesecalendar`` has the State Council's arrangements for."""
    known = {d.year for d in chinese_calendar.holidays} | {d.year for d in chinese_calendar.workdays}
    return sorted(known)


def chinesecalendar_year(year: int) -> tuple[dict[date, str], dict[date, str]]:
    """One year's (holidays, make-up working days) from ``chinesecalendar``, for seeding the calendar table."""
    holidays = {d: str(name) for d, name in chinese_calendar.holidays.items() if d.year == year}
    workdays = {d: str(name) for d, name in chinese_calendar.workdays.items() if d.year == year}
    return holidays, workdays


def calendar_from_chinesecalendar(years: Iterable[int] | None = None) -> WorkCalendar:
    wanted = list(years) if years is not None else chinesecalendar_years()
    holidays: dict[date, str] = {}
    workdays: dict[date, str] = {}
    for year in wanted:
        h, w = chinesecalendar_year(year)
        holidays.update(h)
        workdays.update(w)
    return WorkCalendar(years=frozenset(wanted), holidays=holidays, workdays=workdays)


def is_working_day(day: date, calendar: WorkCalendar | None = None) -> tuple[bool, bool]:
    """(is it a working day, was the official calendar known for that year)."""
    if calendar is not None:
        return calendar.is_working_day(day)
    try:
        return bool(chinese_calendar.is_workday(day)), True
    except NotImplementedError:
        return day.weekday() < 5, False


def _warning(unknown_years: set[int]) -> str | None:
    if not unknown_years:
        return None
    years = "、".join(str(y) for y in sorted(unknown_years))
    return f"{years} 年的法定节假日安排尚未录入，截止日期按周一至周五计算。"


def add_working_days(start: date, days: int, calendar: WorkCalendar | None = None) -> DueDate:
    """The ``days``-th working day after ``start`` (the day the claim reached its level does not count)."""
    if days < 0:
        raise ValueError(f"days cannot be negative: {days}")
    day, counted, unknown_years = start, 0, set()
    while counted < days:
        day += timedelta(days=1)
        working, known = is_working_day(day, calendar)
        if not known:
            unknown_years.add(day.year)
        if working:
            counted += 1
    return DueDate(due=day, warning=_warning(unknown_years))


def working_days_between(start: date, end: date, calendar: WorkCalendar | None = None) -> int:
    """Working days in (start, end]: how many of a level's working days have been used by ``end``."""
    count, day = 0, start
    while day < end:
        day += timedelta(days=1)
        if is_working_day(day, calendar)[0]:
            count += 1
    return count
