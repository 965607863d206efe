"""Claims made from the bureau's settlement records with no application (issue #12 item 2, 免申即享; a plan's
``auto_claim: true``), pure: the service loads the candidates of a feed's batch and the members' history, this
decides and assesses. Nothing here reads a clock, a database or a broker.

A record becomes a claim of an ``auto_claim`` plan when the member is covered by the plan on the discharge date
(第三条), takes none of intake's refusals (``domain.intake.screen``: plan joined, right not revoked for fraud,
claim window open, 第十二条 exclusions the rulebook lists, med_type the plan takes, settlement not claimed nor
reversed) and the record can be assessed (its amounts and stay dates). The records of one member in one batch are
assessed in settlement order, each on top of the one before (第八条: bases accumulate in the period).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from services.claims.domain.aid import ZERO, Assessment, assess_banded, settlement_base
from services.claims.domain.benefits import assess_per_day
from services.claims.domain.intake import CoverageFacts, IntakeFacts, Refusal, screen
from shared.rulebook import BandedPlan, PerDayPlan, Rulebook

__all__ = ["History", "Made", "assess_record", "auto_plans", "refusal_of"]


@dataclass
class History:
    """A member's live claims of one plan: in this period (base, aid) and in all periods (aid)."""

    base: Decimal = ZERO
    aid: Decimal = ZERO
    all_aid: Decimal = ZERO


@dataclass(frozen=True)
class Made:
    assessment: Assessment
    base: Decimal


def auto_plans(rulebook: Rulebook) -> list[BandedPlan | PerDayPlan]:
    """The rulebook's plans that make claims from the bureau's records."""
    return [p for p in rulebook.plans if isinstance(p, BandedPlan | PerDayPlan) and p.auto_claim]


def refusal_of(rulebook: Rulebook, plan: str, med_type: str, discharge: date, coverage: CoverageFacts,
               today: date) -> Refusal | None:
    """Intake's refusal of a claim made from the record (the same rules as an application's), or None."""
    return screen(IntakeFacts(plan=plan, discharge_date=discharge, med_type=med_type, coverage=coverage),
                  rulebook, today)


def assess_record(plan: BandedPlan | PerDayPlan, history: History, amounts: dict[str, Decimal],
                  admission: date, discharge: date, cover_from: date | None = None) -> Made:
    """The record's aid on top of the member's history, and the history moved on by it (in place)."""
    if isinstance(plan, BandedPlan):
        base = settlement_base(plan, amounts)
        assessment = assess_banded(plan, history.base, base, history.aid, history.all_aid)
        history.base += base
    else:  # seed 002 住院津贴: the period's paid days so far are the live aid over the one rate
        prior_days = int((history.aid / plan.rate_per_day).to_integral_value())
        day = assess_per_day(plan, admission, discharge, prior_days, cover_from)
        base = ZERO
        assessment = Assessment(day.aid_amount, ZERO, history.aid + day.aid_amount, day.explanation)
    history.aid += assessment.aid_amount
    history.all_aid += assessment.aid_amount
    return Made(assessment, base)
