"""The member's plain-Chinese account of the bands their aid used (services/claims/domain/plain_aid.py)."""

from __future__ import annotations

from decimal import Decimal

from services.claims.domain.aid import assess_banded
from services.claims.domain.plain_aid import band_uses, explain_banded, yuan
from shared.rulebook import BandedPlan, load_rulebook
from tests.conftest import RULEBOOKS


def inpatient() -> BandedPlan:
    plan = load_rulebook((RULEBOOKS / "yunnan-18.yaml").read_bytes()).plan("inpatient")
    assert isinstance(plan, BandedPlan)
    return plan


def test_the_parts_of_the_base_in_each_band_add_up_to_the_assessed_aid() -> None:
    plan = inpatient()
    assert plan.min_aid == Decimal("100.00")
    for prior, stay in (("0", "5000"), ("0", "23456.78"), ("3000", "40000"), ("0", "300"), ("12000", "1")):
        prior_base, stay_base = Decimal(prior), Decimal(stay)
        assessed = assess_banded(plan, prior_base, stay_base)
        uses = band_uses(plan, prior_base, prior_base + stay_base)
        assert sum(u.part for u in uses) <= stay_base
        if uses:  # every prior F here is above the minimum (100.00), so no floor blurs the difference
            assert abs(sum(u.aid for u in uses) - assessed.aid_amount) <= Decimal("0.02")


def test_a_stay_of_5000_is_told_band_by_band() -> None:
    plan = inpatient()
    aid = assess_banded(plan, Decimal("0"), Decimal("5000.00")).aid_amount
    lines = explain_banded(plan, stay_base=Decimal("5000.00"), cumulative_base=Decimal("5000.00"), aid=aid)
    text = "".join(lines)
    assert "本次住院的核定基数为 5000.00 元" in text and f"本次补助 {aid} 元" in text
    first = plan.bands[0]
    assert f"{yuan(first.over or Decimal(0))}及以下的部分为起付标准" in text
    assert "%" in text and "补助" in lines[2]
    # every band line names its part of the base and what it paid
    for use in band_uses(plan, Decimal("0"), Decimal("5000.00")):
        assert use.text in text


def test_a_stay_under_the_start_point_gets_nothing_and_is_told_why() -> None:
    plan = inpatient()
    small = (plan.bands[0].over or Decimal("0")) / 2
    lines = explain_banded(plan, stay_base=small, cumulative_base=small, aid=Decimal("0.00"))
    assert "没有超过起付标准" in "".join(lines) and lines[-1] == "本次补助 0.00 元。"


def test_yuan_says_amounts_as_people_do() -> None:
    assert yuan(Decimal("10000")) == "1万元" and yuan(Decimal("500.00")) == "500元" and yuan(Decimal("150000")) == "15万元"
