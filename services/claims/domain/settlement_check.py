"""A claim checked against the bureau's settlement record (seed 003 第九条: aid is paid "凭医保部门提供的住院结算
数据"; issue #12 part 3). Pure: the service loads the record; this compares and fills in.

- A claim may name only ``setl_id`` (and plan): amounts, med_type, stay dates and the discharge diagnosis are
  taken from the record (settlement query 5203 ``begndate``/``enddate``, visit query 5201
  ``dscg_maindiag_code``/``dscg_maindiag_name``; docs/SETTLEMENT.md).
- Where the record exists the claim is assessed on the bureau's figures; typed-in values that differ are kept
  as ``differences`` (``{field: {"typed": ..., "bureau": ...}}``) for the reviewer: status ``mismatch``, else
  ``verified``. Without a record the claim is ``unverified`` and assessed on what was typed in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from shared.money import format_money

__all__ = ["SettlementCheck", "bureau_date", "compare"]

Status = Literal["verified", "mismatch", "unverified"]


@dataclass(frozen=True)
class SettlementCheck:
    status: Status
    differences: dict[str, dict[str, str]] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"status": self.status, "differences": self.differences}


def _same(typed: Any, bureau: Any) -> bool:
    try:
        return Decimal(str(typed)) == Decimal(str(bureau))
    except (InvalidOperation, ValueError):
        return str(typed).strip() == str(bureau).strip()


def _shown(value: Any) -> str:
    return format_money(value) if isinstance(value, Decimal) else str(value)


def compare(typed: Mapping[str, Any], bureau: Mapping[str, Any] | None) -> SettlementCheck:
    """Every field given on both sides whose values differ (amounts compared as decimals, to the fen)."""
    if bureau is None:
        return SettlementCheck("unverified")
    differences = {name: {"typed": _shown(value), "bureau": _shown(bureau[name])}
                   for name, value in typed.items()
                   if value is not None and bureau.get(name) is not None and not _same(value, bureau[name])}
    return SettlementCheck("mismatch" if differences else "verified", differences)


def bureau_date(value: Any) -> date | None:
    """A date of the record: ``2026-11-02``, ``2026-11-02 08:30:00`` or ``20261102``; None when absent or unreadable."""
    text = str(value or "").strip()
    for candidate in (text[:10], f"{text[:4]}-{text[4:6]}-{text[6:8]}" if text[:8].isdigit() else ""):
        try:
            return date.fromisoformat(candidate)
        except ValueError:
            continue
    return None
