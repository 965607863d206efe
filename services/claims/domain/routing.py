"""Who approves a claim (审批权限): the rulebook's approval tiers, tried from the bottom."""

from __future__ import annotations

from decimal import Decimal

from shared.rulebook import Approval
from shared.vocab import REVIEW_LEVELS

__all__ = ["LEVELS", "final_level", "review_path"]

# The hierarchy, lowest first. The unit union submits claims; the other three may approve.
LEVELS: tuple[str, ...] = REVIEW_LEVELS


def _final_tier(approval: Approval, aid: Decimal) -> int:
    if aid < 0:
        raise ValueError(f"aid cannot be negative: {aid}")
    if approval.approved_by is not None:
        # seed 001 补助流程: the city centre approves every claim, whatever its aid; the tiers below review it.
        return [tier.level for tier in approval.tiers].index(approval.approved_by)
    # 第十条 (seed 003): aid <= 3,000 the agency point, <= 10,000 the office, above that the centre;
    # `up_to` is inclusive and the first tier covering the aid gives final approval (rulebooks/README.md).
    for index, tier in enumerate(approval.tiers):
        if tier.up_to is None or aid <= tier.up_to:
            return index
    # The rulebook guarantees an open-ended top tier; a stored one without it still goes to the top.
    return len(approval.tiers) - 1


def final_level(approval: Approval, aid: Decimal) -> str:
    """The level whose approval is final for this aid amount."""
    return approval.tiers[_final_tier(approval, aid)].level


def review_path(approval: Approval, aid: Decimal) -> list[str]:
    """Every level that handles the claim, lowest first, ending with the final approver.

    Each lower tier reviews and passes the claim up (yuncheng, seed 001: county union checks, city centre
    approves), e.g. yunnan-18 aid 5000.00 -> ["agency_point", "office"].
    """
    return [tier.level for tier in approval.tiers[: _final_tier(approval, aid) + 1]]
