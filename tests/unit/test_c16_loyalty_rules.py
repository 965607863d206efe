"""第十五条 (seed 003): the granted cover is a plan of the rulebook nobody buys, and the member is told."""

from __future__ import annotations

from datetime import date

import pytest

from services.notifications.handlers import render
from shared.events import LoyaltyGranted
from shared.rulebook import RULEBOOKS_DIR, GradedPlan, RulebookError, load_rulebook, parse_rulebook

YUNNAN = load_rulebook((RULEBOOKS_DIR / "yunnan-18.yaml").read_text(encoding="utf-8"))


def test_the_granted_cover_is_a_graded_plan_outside_the_enrolment_fee() -> None:
    assert YUNNAN.enrolment.loyalty is not None
    plan = YUNNAN.plan(YUNNAN.enrolment.loyalty.grants)
    assert isinstance(plan, GradedPlan) and [g.code for g in plan.grades] == [str(n) for n in range(1, 11)]
    # a roster's default plans (the enrolment fee) never include it: only member.loyalty_granted adds it
    assert [p.code for p in YUNNAN.plans_without_own_fee()] == ["inpatient"]


def test_a_grant_naming_no_plan_of_the_rulebook_is_refused() -> None:
    doc = YUNNAN.to_document()
    doc["plans"] = [p for p in doc["plans"] if p["code"] != "major_accident_disability_cover"]
    with pytest.raises(RulebookError) as error:
        parse_rulebook(doc)
    assert [e["loc"] for e in error.value.errors] == [["enrolment", "loyalty", "grants"]]


def test_the_member_is_told_of_the_grant() -> None:
    event = LoyaltyGranted(member_id="M1", period="yn-18", grant="major_accident_disability_cover",
                           periods_without_aid=["yn-17", "yn-16", "yn-15"])
    rendered = render(event, date(2022, 3, 1))
    assert rendered is not None
    template, text = rendered
    assert template == "loyalty_granted"
    assert text.startswith("2022年3月1日") and "yn-17、yn-16、yn-15" in text and "yn-18 期获赠" in text
    assert "意外伤害" in text
