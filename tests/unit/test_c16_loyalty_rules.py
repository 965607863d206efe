"""第十五条 (seed 003): the granted cover is a plan of the rulebook nobody buys, and the member is told."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from services.claims.domain.intake import CoverageFacts, IntakeFacts, screen
from services.notifications.handlers import render
from shared.events import LoyaltyGranted
from shared.rulebook import RULEBOOKS_DIR, GradedPlan, load_rulebook, parse_rulebook

YUNNAN = load_rulebook((RULEBOOKS_DIR / "yunnan-18.yaml").read_text(encoding="utf-8"))


def test_the_granted_cover_is_a_graded_plan_outside_the_enrolment_fee() -> None:
    assert YUNNAN.enrolment.loyalty is not None
    plan = YUNNAN.plan(YUNNAN.enrolment.loyalty.grants)
    assert isinstance(plan, GradedPlan) and [g.code for g in plan.grades] == [str(n) for n in range(1, 11)]
    # a roster's default plans (the enrolment fee) never include it: only member.loyalty_granted adds it
    assert [p.code for p in YUNNAN.plans_without_own_fee()] == ["inpatient"]


@pytest.mark.parametrize("path", sorted(RULEBOOKS_DIR.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_project_rulebook_with_loyalty_defines_the_granted_plan(path: Path) -> None:
    rb = load_rulebook(path.read_text(encoding="utf-8"))
    if rb.enrolment.loyalty is not None:
        assert rb.enrolment.loyalty.grants in [p.code for p in rb.plans]


def test_a_stored_rulebook_whose_grant_names_no_plan_still_loads_and_the_grant_gives_nothing_to_claim() -> None:
    # Periods published before the plan existed keep loading; intake then refuses a claim on the grant.
    doc = YUNNAN.to_document()
    doc["plans"] = [p for p in doc["plans"] if p["code"] != "major_accident_disability_cover"]
    old = parse_rulebook(doc)
    facts = IntakeFacts(plan="major_accident_disability_cover", discharge_date=date(2022, 5, 1), med_type="",
                        coverage=CoverageFacts("yn-18", ("inpatient", "major_accident_disability_cover"), None))
    refusal = screen(facts, old, date(2022, 6, 1))
    assert refusal is not None and refusal.code == "plan_not_joined"


def test_the_member_is_told_of_the_grant() -> None:
    event = LoyaltyGranted(member_id="M1", period="yn-18", grant="major_accident_disability_cover",
                           periods_without_aid=["yn-17", "yn-16", "yn-15"])
    rendered = render(event, date(2022, 3, 1))
    assert rendered is not None
    template, text = rendered
    assert template == "loyalty_granted"
    assert text.startswith("2022年3月1日") and "yn-17、yn-16、yn-15" in text and "yn-18 期获赠" in text
    assert "意外伤害" in text
