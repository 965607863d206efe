"""The pure rules of claims made from the bureau's records (auto_claim, 免申即享; issue #12 item 2)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from services.claims.domain.intake import CoverageFacts
from services.claims.domain.straight_through import History, assess_record, auto_plans, refusal_of
from shared.rulebook import BandedPlan, PerDayPlan, Rulebook, load_rulebook, parse_rulebook
from tests.conftest import RULEBOOKS


def rulebook(name: str, **plan: object) -> Rulebook:
    doc = load_rulebook((RULEBOOKS / f"{name}.yaml").read_text(encoding="utf-8")).to_document()
    for p in doc["plans"]:
        if p["code"] in ("inpatient", "allowance"):
            p.update(plan)
    return parse_rulebook(doc)


def amounts(base: str, own: str = "1000.00") -> dict[str, Decimal]:
    return {"psn_part_amt": Decimal(base) + Decimal(own), "fulamt_ownpay_amt": Decimal(own)}


def test_only_plans_that_say_auto_claim_make_claims() -> None:
    assert auto_plans(rulebook("yunnan-18")) == []
    assert [p.code for p in auto_plans(rulebook("yunnan-18", auto_claim=True))] == ["inpatient"]
    assert sorted(p.code for p in auto_plans(rulebook("beijing-2014", auto_claim=True))) == ["allowance", "inpatient"]


def test_a_members_records_accumulate_in_the_period_and_count_other_periods_for_the_cap() -> None:
    plan = auto_plans(rulebook("yunnan-18", auto_claim=True))[0]
    assert isinstance(plan, BandedPlan)
    history = History()
    day = date(2022, 5, 9)
    first = assess_record(plan, history, amounts("5000.00"), day, day)
    second = assess_record(plan, history, amounts("8000.00"), day, day)
    assert (first.assessment.aid_amount, second.assessment.aid_amount) == (Decimal("1260.00"), Decimal("3600.00"))
    assert (history.base, history.aid, history.all_aid) == (Decimal("13000.00"), Decimal("4860.00"),
                                                            Decimal("4860.00"))
    with pytest.raises(KeyError):  # the record lacks a field of the rulebook's base: no claim is made
        assess_record(plan, History(), {"psn_part_amt": Decimal("100.00")}, day, day)


def test_a_per_day_allowance_is_assessed_on_the_records_stay() -> None:
    plan = next(p for p in auto_plans(rulebook("beijing-2014", auto_claim=True)) if isinstance(p, PerDayPlan))
    made = assess_record(plan, History(), {}, date(2014, 3, 1), date(2014, 3, 11))
    days = 10 - plan.deductible_days
    assert made.assessment.aid_amount == plan.rate_per_day * min(days, plan.max_days_per_period or days)


@pytest.mark.parametrize(("med_type", "discharge", "code"), [
    ("21", date(2022, 6, 1), None),
    ("52", date(2022, 6, 1), "excluded_maternity"),  # 第十二条(三)
    ("11", date(2022, 6, 1), "excluded_outpatient"),  # 第十二条(四)
    ("21", date(2022, 8, 1), "coverage_ended"),  # 第十四条: left on 2022-07-15
])
def test_a_record_intake_would_refuse_makes_no_claim(med_type: str, discharge: date, code: str | None) -> None:
    rules = rulebook("yunnan-18", auto_claim=True)
    coverage = CoverageFacts(rules.code, ("inpatient",), date(2022, 7, 15))
    refusal = refusal_of(rules, "inpatient", med_type, discharge, coverage, date(2022, 9, 1))
    assert (refusal.code if refusal else None) == code
