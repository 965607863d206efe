"""Loyalty (第十五条, seed 003), the pure rules: "凡连续参加第十五期、第十六期、第十七期医互活动未获得补助的人员，
在继续参加第十八期医互活动时给予一份重大意外伤害保障".

Two questions, no I/O:

- ``claim_aid_after``: what one claim's aid is now, from the claims service's events in whatever order and
  however often they arrive (``claim.approved``, ``claim.adjusted``, ``claim.rejected`` after a reversal,
  ``claim.revoked`` for fraud).
- ``loyalty_change``: whether a member's grant for a period is to be given or withdrawn, from the aid they
  received in each period of the chain before it (the sum of their claims' current aid, per period).

What the article says about a grant already used is in README ("Loyalty cover"): the condition is "未获得补助",
so aid found later in the chain means the cover was given to someone the article does not name and it is
withdrawn; the article says nothing of taking back what was paid on it, so a cover already claimed on stays
with that claim (the claims service keeps it, and says so).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

ZERO = Decimal("0.00")


class ClaimAidEvent(StrEnum):
    APPROVED = "claim.approved"
    ADJUSTED = "claim.adjusted"
    REJECTED = "claim.rejected"  # a rejection at intake or review, or a decided claim reversed (bureau)
    REVOKED = "claim.revoked"  # 第十三条: revoked for fraud


@dataclass(frozen=True)
class ClaimAid:
    """One claim's aid as enrollment knows it. ``ended``: rejected or revoked, final (the claims service never
    decides an ended claim again), so its aid is 0 whatever arrives later. ``adjusted_at``: when the adjustment
    it holds was made (None while it holds the approved amount): only a later adjustment replaces it, and an
    approval never does (claims announces adjustments only of decided claims, so they follow the approval)."""

    aid: Decimal
    ended: bool = False
    adjusted_at: datetime | None = None


def claim_aid_after(current: ClaimAid | None, event: ClaimAidEvent, amount: Decimal | None,
                    at: datetime) -> ClaimAid:
    """The claim's aid after ``event`` (``amount``: the approved aid, or the aid after an adjustment; ``at``:
    when the event happened). The same event twice gives the same answer; any order gives the same end."""
    if event in (ClaimAidEvent.REJECTED, ClaimAidEvent.REVOKED):
        return ClaimAid(ZERO, ended=True, adjusted_at=current.adjusted_at if current else None)
    if current is not None and current.ended:
        return current
    if amount is None:
        raise ValueError(f"{event} carries an amount")
    if event is ClaimAidEvent.APPROVED:
        if current is not None and current.adjusted_at is not None:
            return current  # an adjustment arrived first: it is the newer amount
        return ClaimAid(amount)
    if current is not None and current.adjusted_at is not None and current.adjusted_at > at:
        return current  # an older adjustment arriving late
    return ClaimAid(amount, adjusted_at=at)


class LoyaltyChange(StrEnum):
    NONE = "none"
    GRANT = "grant"
    WITHDRAW = "withdraw"


#: A chain period's aid: the sum of the member's claims' aid in it, or ``AID_ON_PAPER`` for a period run before
#: the system whose imported record says "aid received" without an amount.
AID_ON_PAPER: None = None


def aided(aid: Mapping[str, Decimal | None], period: str) -> bool:
    """Whether the member received aid in the period: an amount above 0 (an approved claim of 0.00 is no aid),
    or the paper record's "received"."""
    return period in aid and (aid[period] is AID_ON_PAPER or (aid[period] or ZERO) > ZERO)


def loyalty_change(chain: Sequence[str], needed: int, aid: Mapping[str, Decimal | None], *,
                   granted_chain: Sequence[str] | None) -> LoyaltyChange:
    """第十五条 for one member and one granting period.

    ``chain``: the periods before the granting one, newest first, as far as the system knows them (at most
    ``needed``); ``aid``: for each period of it the member was covered in, their aid there (a period missing
    from it: not covered, or not known to the system); ``granted_chain``: the chain of the member's live grant
    for the period, None when there is none.

    A live grant is withdrawn when aid appears in a period of its chain; otherwise a member with no live grant
    is granted when they were covered in all ``needed`` periods in a row, without aid in any."""
    if granted_chain is not None:
        return LoyaltyChange.WITHDRAW if any(aided(aid, p) for p in granted_chain) else LoyaltyChange.NONE
    qualifies = len(chain) >= needed and all(p in aid and not aided(aid, p) for p in chain[:needed])
    return LoyaltyChange.GRANT if qualifies else LoyaltyChange.NONE


def aided_periods(chain: Sequence[str], aid: Mapping[str, Decimal | None]) -> list[str]:
    return [p for p in chain if aided(aid, p)]
