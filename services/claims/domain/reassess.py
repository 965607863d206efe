"""Re-assessment of a member's period (第八条 with changing facts): pure, no I/O.

A member's aid from a plan in a period always equals F(sum of the bases of their live stays, in order).
When a stay leaves the period (rejected late, its settlement reversed, revoked for fraud) or the rulebook is
corrected, every remaining stay is assessed again in its original order and the caller records each
difference as an adjustment (a top-up > 0 or a recovery < 0); nothing here touches history.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from services.claims.domain.aid import ZERO, assess_banded, assess_fixed, banded_aid
from shared.rulebook import BandedPlan, FixedPlan

__all__ = ["BandedStay", "FixedStay", "Reassessed", "reassess_banded", "reassess_banded_fast", "reassess_fixed"]


@dataclass(frozen=True)
class BandedStay:
    claim_id: str
    base: Decimal
    aid: Decimal  # what the claim carries now (its first assessment plus every adjustment)


@dataclass(frozen=True)
class FixedStay:
    claim_id: str
    icd10: str
    sex: str
    aid: Decimal


@dataclass(frozen=True)
class Reassessed:
    claim_id: str
    old_aid: Decimal
    new_aid: Decimal
    cumulative_base: Decimal
    explanation: str

    @property
    def difference(self) -> Decimal:
        """> 0 a top-up to pay, < 0 a recovery to ask back, 0 nothing to do."""
        return self.new_aid - self.old_aid


def reassess_banded(plan: BandedPlan, stays: Sequence[BandedStay],
                    prior_aid_other_periods: Decimal = ZERO) -> list[Reassessed]:
    """Every live stay of one member, plan and period, in their original order, assessed again."""
    prior_base = prior_aid = ZERO
    out = []
    for stay in stays:
        assessment = assess_banded(plan, prior_base, stay.base, prior_aid, prior_aid_other_periods + prior_aid)
        out.append(Reassessed(stay.claim_id, stay.aid, assessment.aid_amount, assessment.cumulative_base,
                              assessment.explanation))
        prior_base, prior_aid = assessment.cumulative_base, assessment.period_total
    return out


def reassess_banded_fast(plan: BandedPlan, bases: Sequence[Decimal],
                         prior_aid_other_periods: Decimal = ZERO) -> list[Decimal]:
    """The new aid of each stay only (no explanations): bulk re-assessment after a rulebook correction."""
    prior_base = prior_aid = ZERO
    aids = []
    for base in bases:
        aid = banded_aid(plan, prior_base, base, prior_aid, prior_aid_other_periods + prior_aid)
        aids.append(aid)
        prior_base += base
        prior_aid += aid
    return aids


def reassess_fixed(plan: FixedPlan, stays: Sequence[FixedStay]) -> list[Reassessed]:
    """once_per: period (seed 004): the first live stay with a listed diagnosis is paid, later ones 0; with
    once_per: term (seed 002) the stays are those of the member's whole term."""
    paid = False
    out = []
    for stay in stays:
        assessment = assess_fixed(plan, stay.icd10, stay.sex, already_paid_in_period=paid)
        paid = paid or assessment.aid_amount > 0
        out.append(Reassessed(stay.claim_id, stay.aid, assessment.aid_amount, ZERO, assessment.explanation))
    return out
