"""The checks of domain/feed.py over a whole block of records at once, as column expressions (polars, in Rust):
a feed of a million records is checked in seconds instead of a Python call per record (issue #12 item 1).

Only the records these checks find plainly sound are decided here: every value text, no surrounding spaces, an
18-digit resident ID card number, dates as ``yyyy-MM-dd HH:mm:ss`` / ``yyyy-MM-dd``, amounts as plain
decimal(16,2) text, not a reversal, the identities of domain/settlement.py holding within 0.01. Any other record
(a refusal, a reversal, an old 15-digit number, a date with slashes...) is left to ``check_record``, one by one,
so the refusals, their lines and their messages are exactly those of feed.py. Money stays exact: amounts are read
as whole cents (64-bit integers) for the identities and kept as the text sent; no float anywhere.

Pure: no I/O; ``today`` is passed in.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

import polars as pl

from services.claims.domain.feed import _KNOWN_FIELDS, _MONEY_SET, INSUTYPES, MED_TYPES, Checked, _is_money
from services.claims.domain.settlement import FUND_PARTS, PERSON_PARTS, TOLERANCE
from shared.idnumber import EARLIEST_BIRTH

_ID = r"^[\x21-\x7e]{1,60}$"  # setl_id, mdtrt_id: printable ASCII, no spaces (others go one by one)
_AMOUNT = r"^-?[0-9]{1,14}(?:\.[0-9]{1,2})?$"
_CERTNO = r"^[0-9]{17}[0-9Xx]$"
_DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
_DATETIME = r"^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}$"
# GB 11643: digit i (0-based) weighs 2**(17 - i) mod 11; the check digit a makes the sum + a == 1 (mod 11)
_CHECK = "10X98765432"  # (sum mod 11) -> check digit: (1 - sum) mod 11, 10 written X
_CENT = int(TOLERANCE * 100)


@dataclass(slots=True)
class Sound:
    """Sound settlements as columns, in file order: what write_batch stores (amounts as the decimal text)."""

    setl_id: list[str] = field(default_factory=list)
    certno: list[str] = field(default_factory=list)
    record: list[bytes] = field(default_factory=list)  # the record as sent (UTF-8 JSON)
    mdtrt_id: list[str | None] = field(default_factory=list)
    setl_date: list[date | None] = field(default_factory=list)
    insutype: list[str | None] = field(default_factory=list)
    med_type: list[str | None] = field(default_factory=list)
    medfee_sumamt: list[str] = field(default_factory=list)
    psn_part_amt: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.setl_id)

    def append(self, checked: Checked, text: str) -> None:
        assert checked.certno is not None  # a settlement (not a reversal) always has one (feed.REQUIRED)
        self.setl_id.append(checked.setl_id)
        self.certno.append(checked.certno)
        self.record.append(text.encode("utf-8"))
        self.mdtrt_id.append(checked.mdtrt_id)
        self.setl_date.append(checked.setl_date)
        self.insutype.append(checked.insutype)
        self.med_type.append(checked.med_type)
        self.medfee_sumamt.append(str(checked.medfee_sumamt))
        self.psn_part_amt.append(str(checked.psn_part_amt))

    def extend(self, other: Sound) -> None:
        for name in self.__slots__:
            getattr(self, name).extend(getattr(other, name))

    def __iter__(self) -> Iterator[tuple[Checked, str]]:
        """The records as (Checked, stored text), for code that takes them one by one."""
        for i, setl_id in enumerate(self.setl_id):
            yield Checked(setl_id=setl_id, certno=self.certno[i], mdtrt_id=self.mdtrt_id[i],
                          insutype=self.insutype[i], med_type=self.med_type[i], setl_date=self.setl_date[i],
                          medfee_sumamt=Decimal(self.medfee_sumamt[i]), psn_part_amt=Decimal(self.psn_part_amt[i]),
                          reversal=False), self.record[i].decode("utf-8")


def _col(frame: pl.DataFrame, name: str) -> pl.Expr:
    return pl.col(name) if name in frame.columns else pl.lit(None, dtype=pl.String)


def _cents(expr: pl.Expr) -> pl.Expr:
    """A plain decimal(16,2) text (already matched by _AMOUNT) as whole cents, exactly (polars' decimal)."""
    return (expr.cast(pl.Decimal(18, 2), strict=False) * 100).cast(pl.Int64)


def _day(expr: pl.Expr) -> pl.Expr:
    """The date of a ``yyyy-MM-dd`` text (null if no such day), year 1 onwards as Python's date."""
    day = expr.str.strptime(pl.Date, "%Y-%m-%d", strict=False)
    return pl.when(day.dt.year() >= 1).then(day)


def sound_rows(frame: pl.DataFrame, today: date) -> tuple[list[bool], Sound]:
    """Which rows of ``frame`` (one row per record, every column text) are plainly sound settlements, and those
    records' columns (Sound.record left empty: the caller holds the text sent). False only means "check it one
    by one"."""
    if any(dtype != pl.String for dtype in frame.dtypes):
        return [False] * frame.height, Sound()
    money = [n for n in frame.columns if n in _MONEY_SET or (n not in _KNOWN_FIELDS and _is_money(n))]
    text = {n: _col(frame, n) for n in ("setl_id", "mdtrt_id", "certno", "psn_cert_type", "insutype", "med_type",
                                        "setl_time", "begndate", "enddate", "refd_setl_flag")}
    present = {n: pl.col(n).is_not_null() & (pl.col(n) != "") for n in money}
    checks: list[pl.Expr] = [
        text["setl_id"].str.contains(_ID).fill_null(False),
        text["mdtrt_id"].is_null() | (text["mdtrt_id"] == "") | text["mdtrt_id"].str.contains(_ID),
        text["refd_setl_flag"].is_null() | text["refd_setl_flag"].is_in(["", "0"]),
        text["psn_cert_type"].is_null() | text["psn_cert_type"].is_in(["", "01"]),
        text["certno"].str.contains(_CERTNO).fill_null(False),
        text["insutype"].is_in(list(INSUTYPES)).fill_null(False),
        text["med_type"].is_in(list(MED_TYPES)).fill_null(False),
        text["setl_time"].str.contains(_DATETIME).fill_null(False),
        *(text[n].is_null() | (text[n] == "") | text[n].str.contains(_DATE) for n in ("begndate", "enddate")),
        *(~present[n] | pl.col(n).str.contains(_AMOUNT) for n in money),
        *(present[n] if n in present else pl.lit(False) for n in ("medfee_sumamt", "psn_part_amt")),
        *(~pl.col(n).str.starts_with("-").fill_null(False)
          for n in ("medfee_sumamt", "psn_part_amt", "fund_pay_sumamt") if n in present),
    ]
    shape = frame.select(pl.all_horizontal(checks).alias("ok"))["ok"]
    if not shape.any():
        return [False] * frame.height, Sound()
    rows = frame.filter(shape) if not shape.all() else frame
    positions = shape.arg_true() if not shape.all() else None

    certno = _col(rows, "certno").str.to_uppercase()
    # the weighted sum modulo 11 is twice the first 17 digits read in base 13 (shared/idnumber.py check_digit)
    weighted = certno.str.slice(0, 17).str.to_integer(base=13) % 11 * 2 % 11
    check = pl.lit(_CHECK).str.slice(weighted, 1)
    born = certno.str.slice(6, 8).str.strptime(pl.Date, "%Y%m%d", strict=False)
    setl_time = _col(rows, "setl_time")
    clock = [setl_time.str.slice(start, 2).cast(pl.Int64) for start in (11, 14, 17)]
    cents = {n: pl.when(present[n]).then(_cents(pl.col(n))) for n in money}

    def given(name: str) -> pl.Expr:
        return cents[name] if name in cents else pl.lit(None, dtype=pl.Int64)

    medfee, fund, person = given("medfee_sumamt"), given("fund_pay_sumamt"), given("psn_part_amt")
    hosp, own = given("hosp_part_amt").fill_null(0), given("fulamt_ownpay_amt")
    identities = [(medfee - fund - person - hosp).abs() <= _CENT]  # null (fund absent): not checked
    for total, parts in ((fund, FUND_PARTS), (person, PERSON_PARTS)):
        named = [cents[n] for n in parts if n in cents]
        if named:
            identities.append(pl.all_horizontal(p.is_null() for p in named)
                              | ((total - pl.sum_horizontal(named)).abs() <= _CENT))
    identities.append(own.abs() <= person.abs())
    begun, ended = _day(_col(rows, "begndate")), _day(_col(rows, "enddate"))
    out = rows.select(
        ok=pl.all_horizontal(
            certno.str.slice(17, 1) == check,
            born.is_not_null(), born >= EARLIEST_BIRTH, born <= today,
            clock[0] <= 23, clock[1] <= 59, clock[2] <= 59,
            _day(setl_time.str.slice(0, 10)).is_not_null(),
            _col(rows, "begndate").is_null() | (_col(rows, "begndate") == "") | begun.is_not_null(),
            _col(rows, "enddate").is_null() | (_col(rows, "enddate") == "") | ended.is_not_null(),
            begun.is_null() | ended.is_null() | (ended >= begun),
            *(i.fill_null(True) for i in identities)),
        setl_id=_col(rows, "setl_id"), certno=certno,
        mdtrt_id=pl.when(_col(rows, "mdtrt_id") != "").then(_col(rows, "mdtrt_id")),
        setl_date=_day(setl_time.str.slice(0, 10)), insutype=_col(rows, "insutype"),
        med_type=_col(rows, "med_type"), medfee_sumamt=pl.col("medfee_sumamt"),
        psn_part_amt=pl.col("psn_part_amt"))
    ok = out["ok"].fill_null(False)
    if positions is None:
        mask = ok.to_list()
    else:
        mask = [False] * frame.height
        for position in positions.filter(ok).to_list():
            mask[position] = True
    kept = out.filter(ok)
    columns: dict[str, Any] = {n: kept[n].to_list() for n in (
        "setl_id", "certno", "mdtrt_id", "setl_date", "insutype", "med_type", "medfee_sumamt", "psn_part_amt")}
    return mask, Sound(**columns)
