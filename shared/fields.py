"""Field types every request model uses, so that no input can reach the database or the aid engine out of
range (issue #9 item 3): one definition each, named in the OpenAPI schema.

- ``Money`` / ``PositiveMoney``: CNY as Decimal, at most two decimals, finite (NaN and infinities refused),
  at most ``MAX_MONEY`` (100,000,000.00: a hundred million yuan is far above any fee, remittance, bill or
  aid this fund handles, and far below what the ``NUMERIC(14, 2)`` columns hold).
- ``SaneDate``: 1900-01-01 up to a year from today. ``PastDate``: the same range, not after today (a
  discharge date, a payment received).
- ``Text``: a string without NUL or unpaired surrogates (also refused for every request by
  ``shared.guards.InputGuard``; the type covers multipart form fields, which the guard does not buffer).
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Annotated

from pydantic import AfterValidator, Field

from shared.guards import text_problem

MAX_MONEY = Decimal("100000000.00")
EARLIEST_DATE = date(1900, 1, 1)


def latest_date() -> date:
    """A year from today: the latest date any request may carry."""
    return date.today() + timedelta(days=366)


def _sane(value: date) -> date:
    if not EARLIEST_DATE <= value <= latest_date():
        raise ValueError(f"日期必须在 {EARLIEST_DATE} 至 {latest_date()} 之间")
    return value


def _past(value: date) -> date:
    _sane(value)
    if value > date.today():
        raise ValueError("日期不能晚于今天")
    return value


def _text(value: str) -> str:
    if problem := text_problem(value):
        raise ValueError(problem)
    return value


Money = Annotated[Decimal, Field(ge=0, le=MAX_MONEY, decimal_places=2, allow_inf_nan=False)]
PositiveMoney = Annotated[Decimal, Field(gt=0, le=MAX_MONEY, decimal_places=2, allow_inf_nan=False)]
SaneDate = Annotated[date, AfterValidator(_sane)]
PastDate = Annotated[date, AfterValidator(_past)]
Text = Annotated[str, AfterValidator(_text)]


def money_problem(value: Decimal) -> str | None:
    """Why ``value`` is not an amount a request may carry (for amounts read outside a model), or None."""
    if not value.is_finite():
        return "金额不能是 NaN 或无穷大"
    if abs(value) > MAX_MONEY:
        return f"金额不能超过 {MAX_MONEY}"
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -2 and value != value.quantize(Decimal("0.01")):
        return "金额最多两位小数"
    return None
