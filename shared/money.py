"""Money: CNY amounts as `Decimal`, end to end, never float.

Rounding to the fen (0.01 CNY, half up) happens in exactly one place: `to_fen`.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

__all__ = ["FEN", "format_money", "parse_money", "to_fen"]

FEN = Decimal("0.01")


def to_fen(x: Decimal) -> Decimal:
    """Round to the fen, half up: the project's only rounding function.

    Negative zero comes back as plain zero so that "-0.00" never reaches a member's statement.
    """
    if not isinstance(x, Decimal):
        raise TypeError(f"to_fen expects a Decimal, got {type(x).__name__}")
    if not x.is_finite():
        raise ValueError(f"cannot round a non-finite amount: {x}")
    try:
        rounded = x.quantize(FEN, rounding=ROUND_HALF_UP)
    except InvalidOperation as exc:  # more digits than the context can hold
        raise ValueError(f"amount too large to round to the fen: {x}") from exc
    return rounded.copy_abs() if rounded.is_zero() else rounded


def parse_money(value: str | int | Decimal, field: str = "amount") -> Decimal:
    """Read an amount from text, an integer or a Decimal; return it with exactly two decimal places.

    Rejects floats (TypeError: a float has already lost the fen), NaN and infinities, and values
    more precise than a fen (ValueError). Trailing zeros are fine: "1.500" is 1.50.
    """
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise TypeError(
            f"{field}: money must be a string, int or Decimal, not {type(value).__name__}"
            + (" (floats are never exact; pass the amount as a string)" if isinstance(value, float) else "")
        )
    if isinstance(value, Decimal):
        amount = value
    elif isinstance(value, int):
        amount = Decimal(value)
    else:
        text = value.strip()
        try:
            amount = Decimal(text)
        except InvalidOperation:
            raise ValueError(f"{field}: not an amount of money: {value!r}") from None
    if not amount.is_finite():
        raise ValueError(f"{field}: amount must be finite, got {value!r}")
    fen = to_fen(amount)
    if fen != amount:
        raise ValueError(f"{field}: more than 2 decimal places (smaller than a fen): {value!r}")
    return fen


def format_money(x: Decimal) -> str:
    """Plain two-decimal text, as banks and statements expect: Decimal("1260") -> "1260.00"."""
    return f"{to_fen(x):f}"
