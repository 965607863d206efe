"""The row checks of ``roster_rules.check_roster`` over whole columns at once (polars expressions, in Rust): which
rows are plainly sound, so a 200,000-row roster is not walked by a Python loop body per row (issue #15). Pure.

Only rows these checks find plainly sound are decided here, and plainly sound means the row check would find
nothing to say about it (no error, no warning): an 18-digit ID number as plain ASCII digits (X allowed last),
nothing around it, a right check digit, a birth date that exists between 1900-01-01 and today, a region code
in the GB/T 2260 table, not retired by the day the checks use; an 11-digit mobile number; a 10-30 digit account
passing Luhn; a name and bank name holding a letter or digit and at most 100 characters; an allowed member type;
a retiree on the previous period's list when the rulebook wants renewal; the sex the number gives when a plan
goes by sex. Anything else (a 15-digit number, full-width digits, spaces, Excel's 1.23457E+17 ...) is left to
the row check, one by one, so every problem keeps its code, message and line
(tests/unit/test_q15_roster_columns.py compares the two on odd rows and hypothesis mixes).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import date
from operator import attrgetter
from typing import TYPE_CHECKING

import polars as pl

from shared import idnumber

if TYPE_CHECKING:
    from services.enrollment.domain.roster_rules import RosterMember

_CHECK = "10X98765432"  # GB 11643: (2 x the first 17 digits read in base 13) mod 11 -> check digit
_TEXT = ("certno", "phone", "bank_account", "name", "bank_name", "member_type", "sex")


def luhn_ok(accounts: pl.Series) -> pl.Series:
    """Luhn (ISO/IEC 7812) over a column of 1-30 ASCII digits (null otherwise): every second digit from the right
    doubled, 9 taken off a doubled digit above 9. Zero-padded to 30 and read as two 15-digit integers, the digits
    are taken off with % 10 and // 10 (whole-column arithmetic: a string slice per position is 6x slower)."""
    padded = accounts.str.zfill(30)
    total = pl.zeros(len(accounts), dtype=pl.Int64, eager=True)
    for offset, half in ((0, padded.str.slice(15, 15)), (15, padded.str.slice(0, 15))):
        number = half.str.to_integer(strict=False)
        for position in range(offset, offset + 15):  # position 0: the rightmost digit
            digit = number % 10
            total += (2 * digit - 9 * (digit > 4).cast(pl.Int64)) if position % 2 else digit
            number = number // 10
    return total % 10 == 0


def rows_to_check(
    members: Sequence[RosterMember], *, today: date, allowed_types: Collection[str],
    enrolled_elsewhere: Collection[str], retirees_need: Collection[str] | None, renewal_rule: bool,
    sex_matters: bool, born_by: Mapping[str, date] | None, required_insurance: Collection[str],
    plan_codes: Collection[str],
) -> list[int]:
    """Indices (ascending) of the rows that are not plainly sound: the row check decides each of them.

    ``retirees_need``: the previous period's certnos (None: that period is not in the system) when
    ``renewal_rule``; ``born_by``: per sex ("male"/"female"), the latest birth date whose holder is past the
    retirement age on the check day (None: the rulebook has no retirement age); in-service members born on or
    before it go to the row check."""
    if not members:
        return []
    columns = {name: list(map(attrgetter(name), members)) for name in _TEXT}
    frame = pl.DataFrame(columns, schema=dict.fromkeys(_TEXT, pl.String))
    certno = pl.col("certno")
    first17 = certno.str.slice(0, 17)
    weighted = first17.str.to_integer(base=13, strict=False) % 11 * 2 % 11
    ymd = certno.str.slice(6, 8)
    born = ymd.str.to_date("%Y%m%d", strict=False)
    regions = frame["certno"].str.slice(0, 6).unique().to_list()
    known = [code for code in regions if code is not None and code.isascii() and code.isdigit()
             and idnumber.region_name(code) is not None]
    sex_of_number = pl.when(certno.str.slice(16, 1).cast(pl.Int32, strict=False) % 2 == 1) \
        .then(pl.lit("male")).otherwise(pl.lit("female"))
    checks: list[pl.Expr] = [
        certno.str.contains(r"^[0-9]{17}[0-9X]$"),
        certno.str.slice(17, 1) == pl.lit(_CHECK).str.slice(weighted, 1),
        born.dt.strftime("%Y%m%d") == ymd,
        born >= pl.lit(idnumber.EARLIEST_BIRTH),
        born <= pl.lit(today),
        certno.str.slice(0, 6).is_in(known),
        pl.col("phone").str.contains(r"^1[3-9][0-9]{9}$"),
        pl.col("bank_account").str.contains(r"^[0-9]{10,30}$"),
        pl.col("name").str.contains(r"[\p{L}\p{N}]"),
        pl.col("name").str.len_chars() <= 100,
        pl.col("bank_name").str.contains(r"[\p{L}\p{N}]"),
        pl.col("bank_name").str.len_chars() <= 100,
        pl.col("member_type").is_in(list(allowed_types)),
    ]
    if enrolled_elsewhere:
        checks.append(~certno.is_in(list(enrolled_elsewhere)))
    if renewal_rule:
        on_list = certno.is_in(list(retirees_need)) if retirees_need is not None else pl.lit(False)
        checks.append((pl.col("member_type") != "retired") | on_list)
    if sex_matters:
        checks.append(sex_of_number == pl.col("sex"))
    if born_by is not None:
        checks.append((pl.col("member_type") != "in_service") | pl.when(sex_of_number == "male")
                      .then(born > pl.lit(born_by["male"])).otherwise(born > pl.lit(born_by["female"])))
    sound = frame.select(pl.all_horizontal(checks).fill_null(False).alias("sound"))["sound"] \
        & luhn_ok(frame["bank_account"]).fill_null(False)
    unsound = set((~sound).arg_true().to_list())
    # The insurance and plan lists repeat a handful of tuples: each distinct one is judged once.
    required = set(required_insurance)
    insurance = list(map(attrgetter("insurance"), members))
    lacking = {kinds for kinds in set(insurance) if required - set(kinds)}
    if lacking:
        unsound.update(i for i, kinds in enumerate(insurance) if kinds in lacking)
    plans = list(map(attrgetter("plans"), members))
    known_plans = set(plan_codes)
    unknown = {codes for codes in set(plans) if codes is not None and set(codes) - known_plans}
    if unknown:
        unsound.update(i for i, codes in enumerate(plans) if codes in unknown)
    return sorted(unsound)
