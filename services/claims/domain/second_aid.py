"""What a member still owes in a period, for second aid (二次补助, seed 000): pure, no I/O.

Seed 000: "在基本医疗保险、大病补充保险、医疗救助、医疗互助活动补助和工会救助保障后，个人自负剩余费用仍超过10万元（含）
的，省职工医疗互助中心按照剩余费用和职工本人参加医疗互助活动年限综合给予不同比例的二次补助，最高不超过50万元".
So remaining is per member and period, not per settlement: the person's part (psn_part_amt, what is left after
basic insurance, 大病补充 and 医疗救助) over the member's live stays in the period, minus the first aid paid on
them, minus other union assistance (工会救助) recorded for the period. The rate and cap: aid.assess_second_aid.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from shared.money import parse_money, to_fen

__all__ = ["PeriodStay", "remaining_for_period"]

ZERO = Decimal("0.00")


@dataclass(frozen=True)
class PeriodStay:
    psn_part_amt: Decimal  # the settlement's person's part (docs/SETTLEMENT.md)
    first_aid: Decimal  # first aid paid on the stay (every adjustment included)
    live: bool = True  # False once rejected, reversed or revoked: it no longer counts


def remaining_for_period(stays: Sequence[PeriodStay], other_assistance: Decimal = ZERO) -> Decimal:
    """Remaining = sum of psn_part_amt of live stays - first aid paid on them - other assistance, never below 0."""
    other = parse_money(other_assistance, field="other_assistance")
    if other < 0:
        raise ValueError(f"other assistance cannot be negative: {other}")
    owed = ZERO
    for stay in stays:
        part = parse_money(stay.psn_part_amt, field="psn_part_amt")
        aid = parse_money(stay.first_aid, field="first_aid")
        if part < 0 or aid < 0:
            raise ValueError("a stay's person's part and first aid cannot be negative")
        if stay.live:
            owed += part - aid
    return to_fen(max(owed - other, ZERO))
