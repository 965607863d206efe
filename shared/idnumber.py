"""Resident identity numbers (公民身份号码, GB 11643-1999): one reading for every service. Pure, no I/O.

A number is 6 digits of region (the administrative division code of GB/T 2260), 8 of birth date (YYYYMMDD),
3 of sequence (odd for men, even for women) and a check digit (0-9 or X). First-generation cards (1984-2004)
carry 15 digits: the same without the century of the year and without the check digit. They are still in
old records, so a 15-digit number is read as its 18-digit form ("19" inserted before the year, the check
digit computed), which is the form stored, shown and matched.

The region code is the code of the place where the number was first issued, not of the place's code in the
year of birth: a worker born in 1962 in Kunming holds 530102 (五华区), a code in use only from 1983. So a
region code is accepted when it has existed at any time in the historical GB/T 2260 table python-stdnum
ships (``stdnum/cn/loc.dat``, every code with the years it was in use); a code not in that table is not a
refusal but a warning (the table may lag behind a new district, or the code may be mistyped: staff check).
"""

from __future__ import annotations

import functools
import re
from datetime import date
from enum import StrEnum
from typing import NamedTuple

from stdnum import numdb  # python-stdnum's reader of its own data files

__all__ = [
    "EARLIEST_BIRTH",
    "IdNumber",
    "IdNumberError",
    "Problem",
    "check_digit",
    "lookup_form",
    "parse",
    "region_name",
    "upgrade_15",
]

EARLIEST_BIRTH = date(1900, 1, 1)
# ASCII digits only: a full-width ０-９ (a Chinese input method's) would pass \d, then be stored as typed
_SHAPE_18 = re.compile(r"[0-9]{17}[0-9X]")
_SHAPE_15 = re.compile(r"[0-9]{15}")


class Problem(StrEnum):
    """Why a number is refused (the ``reason`` of an ``invalid_certno`` error)."""

    FORMAT = "format"
    CHECK_DIGIT = "check_digit"
    BIRTH_DATE = "birth_date"


_MESSAGES = {
    Problem.FORMAT: "身份证号码应为 18 位（最后一位可为 X）或 15 位数字",
    Problem.CHECK_DIGIT: "身份证号码校验位错误（可能有数字录错）",
    Problem.BIRTH_DATE: "身份证号码中的出生日期无效（不存在、晚于今天或早于 1900 年）",
}


class IdNumberError(ValueError):
    def __init__(self, problem: Problem) -> None:
        super().__init__(_MESSAGES[problem])
        self.problem = problem
        self.message = _MESSAGES[problem]


class IdNumber(NamedTuple):  # a tuple: one is made per roster row
    number: str  # always the 18-digit form
    birth_date: date
    sex: str  # "male" | "female", from the sequence's last digit
    region_known: bool  # the region code is in the historical GB/T 2260 table (any year)
    converted_from: str | None = None  # the 15-digit number this was read from


def check_digit(first17: str) -> str:
    """GB 11643 check digit (ISO 7064 MOD 11-2) of the first 17 digits.

    The standard weighs digit i (0-based from the left) by 2**(17 - i) mod 11 and picks the check digit a
    with sum + a == 1 (mod 11), a == 10 written X. As 13 == 2 (mod 11), the 17 digits read as a base-13
    number are the sum of d_i * 2**(16 - i) modulo 11, half the weighted sum: one C-level int() instead of a
    Python loop (a provincial roster has 200,000 rows)."""
    value = (1 - 2 * int(first17, 13)) % 11
    return "X" if value == 10 else str(value)


def upgrade_15(number: str) -> str:
    """A 15-digit first-generation number as its 18-digit form: "19" before the year, check digit added."""
    first17 = f"{number[:6]}19{number[6:15]}"
    return first17 + check_digit(first17)


@functools.lru_cache(maxsize=65536)
def _birth_date(yyyymmdd: str) -> date | None:
    try:
        return date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:8]))
    except ValueError:
        return None


@functools.lru_cache(maxsize=8192)
def _region_names(code: str) -> tuple[str, ...]:
    """Every name the code has had in python-stdnum's GB/T 2260 table, oldest first; () when unknown.

    The table gives each code's county as ``[start-end]name`` parts, comma-separated (a code renamed over
    time has several); the province comes from the first two digits."""
    info: dict[str, str] = {}
    for _, props in numdb.get("cn/loc").info(code):
        info.update(props)
    county = info.get("county")
    if not county:
        return ()
    names = tuple(part.split("]", 1)[1] if part.startswith("[") else part for part in county.split(","))
    above = info.get("province", "")
    if not code.endswith("00"):  # a county or district: its prefecture (its code with 00 at the end) too
        prefecture = _region_names(code[:4] + "00")
        if prefecture and prefecture[-1] != above and not prefecture[-1].endswith(("市辖区", "县")):
            above = prefecture[-1]
    return tuple(name if name == above or above.endswith(name) else f"{above}{name}" for name in names)


def region_name(code: str) -> str | None:
    """The latest name of a region code (e.g. 530102 -> 云南省五华区), None when the table does not know it."""
    names = _region_names(code)
    return names[-1] if names else None


def parse(raw: str, *, today: date | None = None) -> IdNumber:
    """Read an ID number as typed (spaces around it, lower-case x and 15-digit numbers allowed).

    Refused (``IdNumberError``): a shape other than 18 or 15 digits, a wrong check digit, a birth date that
    does not exist, is in the future or before 1900. An unknown region code is not refused: see
    ``IdNumber.region_known``."""
    text = raw.strip().upper()
    converted_from: str | None = None
    if len(text) == 18 and _SHAPE_18.fullmatch(text):
        if check_digit(text[:17]) != text[17]:
            raise IdNumberError(Problem.CHECK_DIGIT)
    elif len(text) == 15 and _SHAPE_15.fullmatch(text):
        converted_from, text = text, upgrade_15(text)
    else:
        raise IdNumberError(Problem.FORMAT)
    born = _birth_date(text[6:14])
    if born is None or born < EARLIEST_BIRTH or born > (today or date.today()):
        raise IdNumberError(Problem.BIRTH_DATE)
    return IdNumber(number=text, birth_date=born, sex="male" if int(text[16]) % 2 else "female",
                    region_known=bool(_region_names(text[:6])), converted_from=converted_from)


def lookup_form(raw: str) -> str:
    """The form to look a person up by: a 15-digit number as its 18-digit form, anything else trimmed and
    upper-cased (so a look-up never fails on a lower-case x or an old card, and never raises)."""
    text = raw.strip().upper()
    return upgrade_15(text) if _SHAPE_15.fullmatch(text) else text
