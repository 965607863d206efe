"""The format's keys from issue #16 (rulebooks/README.md): read as the files say, bad values refused by key."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from shared.rulebook import (
    BandedPlan,
    FixedPlan,
    GradedPlan,
    PerDayPlan,
    RulebookError,
    SecondAidPlan,
    load_rulebook,
    parse_rulebook,
)
from tests.conftest import RULEBOOKS

D = Decimal


def document(name: str) -> dict[str, Any]:
    return load_rulebook((RULEBOOKS / f"{name}.yaml").read_bytes()).to_document()


def locs(data: Any) -> list[list[str | int]]:
    with pytest.raises(RulebookError) as caught:
        parse_rulebook(data)
    return [e["loc"] for e in caught.value.errors]


def plan_index(doc: dict[str, Any], code: str) -> int:
    return next(i for i, p in enumerate(doc["plans"]) if p["code"] == code)


# --- the files read as their comments say -------------------------------------------------------------------

BEIJING = load_rulebook((RULEBOOKS / "beijing-2014.yaml").read_bytes())


def test_beijing_reads_every_plan_of_seed_002() -> None:
    assert [p.code for p in BEIJING.plans] == [
        "inpatient", "allowance", "critical", "women", "accident", "child-accident", "jingka"]
    allowance = BEIJING.plan("allowance")
    assert isinstance(allowance, PerDayPlan)
    assert (allowance.rate_per_day, allowance.deductible_days, allowance.max_days_per_period) == (D("50.00"), 3, 180)
    critical = BEIJING.plan("critical")
    assert isinstance(critical, FixedPlan)
    assert (critical.once_per, critical.term_periods) == ("term", 3)  # "三年90元"
    assert critical.fee is not None and critical.fee.new == D("90.00")
    women = BEIJING.plan("women")
    assert isinstance(women, FixedPlan) and women.eligible.sex == "female" and women.term_periods is None
    accident, child = BEIJING.plan("accident"), BEIJING.plan("child-accident")
    assert isinstance(accident, GradedPlan) and isinstance(child, GradedPlan)
    assert (accident.beneficiary, child.beneficiary) == ("member", "child")
    assert [g.code for g in accident.grades] == ["death", "disability-1", "disability-5", "disability-10"]
    assert (accident.max_aid_per_period, child.max_aid_per_period) == (D("10000.00"), D("6653.00"))
    jingka = BEIJING.plan("jingka")
    assert isinstance(jingka, BandedPlan) and jingka.every_union_member and jingka.mode == "marginal"
    assert not any(getattr(p, "every_union_member", False) for p in BEIJING.plans if p.code != "jingka")
    assert BEIJING.enrolment.payers_allowed == ["employer", "union", "member"]
    assert BEIJING.enrolment.shares_per_member == 3


def test_beijings_six_premium_plans_add_up_to_the_100653_the_source_states() -> None:
    # seed 002 "最高每人每年可享互助金100653元" across the six plans (the split is assumed, the sum is the source's).
    caps = {
        "inpatient": BEIJING.plan("inpatient").max_aid_per_period,  # type: ignore[union-attr]
        "allowance": D(180) * D("50.00"),
        "critical": D("50000.00"),
        "women": D("10000.00"),
        "accident": D("10000.00"),
        "child-accident": D("6653.00"),
    }
    assert sum(caps.values(), D(0)) == D("100653.00")


def test_yuncheng_reads_its_bands_as_whole_base_rates() -> None:
    plan = load_rulebook((RULEBOOKS / "yuncheng-2024.yaml").read_bytes()).plan("inpatient")
    assert isinstance(plan, BandedPlan) and plan.mode == "whole_base"
    assert [(b.from_, b.over, b.upto, b.rate) for b in plan.bands] == [
        (D("2000.00"), None, None, D("0.25")), (D("5000.00"), None, None, D("0.30"))]


def test_yunnan_19_writes_the_second_aid_threshold_inclusive() -> None:
    plan = load_rulebook((RULEBOOKS / "yunnan-19.yaml").read_bytes()).plan("second-aid")
    assert isinstance(plan, SecondAidPlan)
    assert [(r.years_from, r.remaining_from, r.remaining_over) for r in plan.ratios] == [
        (1, D("100000.00"), None), (5, D("100000.00"), None), (10, D("100000.00"), None)]
    assert plan.ratios[0].covers(D("100000.00")) and not plan.ratios[0].covers(D("99999.99"))


def test_the_first_formats_exclusive_ratio_bound_still_reads() -> None:
    doc = document("yunnan-19")
    i = plan_index(doc, "second-aid")
    doc["plans"][i]["ratios"] = [{"years_from": 1, "remaining_over": "99999.99", "rate": "0.30"}]
    plan = parse_rulebook(doc).plan("second-aid")
    assert isinstance(plan, SecondAidPlan)
    assert plan.ratios[0].covers(D("100000.00")) and not plan.ratios[0].covers(D("99999.99"))
    assert parse_rulebook(parse_rulebook(doc).to_document()) == parse_rulebook(doc)


# --- bad values are refused, each naming its key ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value"),
    [("rate_per_day", 50.0), ("rate_per_day", "-1.00"), ("deductible_days", -1), ("deductible_days", "3"),
     ("max_days_per_period", 0), ("med_types", [])],
)
def test_a_bad_per_day_value_is_named(key: str, value: Any) -> None:
    doc = document("beijing-2014")
    i = plan_index(doc, "allowance")
    doc["plans"][i][key] = value
    assert locs(doc) == [["plans", i, key]]


def test_a_per_day_plan_needs_its_rate() -> None:
    doc = document("beijing-2014")
    i = plan_index(doc, "allowance")
    del doc["plans"][i]["rate_per_day"]
    assert locs(doc) == [["plans", i, "rate_per_day"]]


def test_bad_grades_and_beneficiaries_are_named() -> None:
    doc = document("beijing-2014")
    i = plan_index(doc, "child-accident")
    doc["plans"][i]["beneficiary"] = "spouse"
    assert locs(doc) == [["plans", i, "beneficiary"]]

    doc = document("beijing-2014")
    doc["plans"][i]["grades"][1]["code"] = "death"
    assert locs(doc) == [["plans", i, "grades", 1, "code"]]

    doc = document("beijing-2014")
    doc["plans"][i]["grades"] = []
    assert locs(doc) == [["plans", i, "grades"]]

    doc = document("beijing-2014")
    doc["plans"][i]["grades"][0]["amount"] = "6653.001"
    assert locs(doc) == [["plans", i, "grades", 0, "amount"]]


def test_a_term_needs_its_length_and_a_length_needs_a_term() -> None:
    doc = document("beijing-2014")
    i = plan_index(doc, "critical")
    del doc["plans"][i]["term_periods"]
    assert locs(doc) == [["plans", i, "term_periods"]]

    doc = document("beijing-2014")
    doc["plans"][i]["once_per"] = "period"
    assert locs(doc) == [["plans", i, "term_periods"]]

    doc = document("beijing-2014")
    doc["plans"][i]["term_periods"] = 0
    assert locs(doc) == [["plans", i, "term_periods"]]

    doc = document("beijing-2014")
    doc["plans"][i]["once_per"] = "lifetime"
    assert locs(doc) == [["plans", i, "once_per"]]


def test_a_plan_for_every_union_member_is_free() -> None:
    doc = document("beijing-2014")
    i = plan_index(doc, "jingka")
    doc["plans"][i]["fee"] = {"new": "10.00", "renewal": "10.00"}
    assert locs(doc) == [["plans", i, "every_union_member"]]

    doc = document("beijing-2014")
    doc["plans"][i]["every_union_member"] = "yes"
    assert locs(doc) == [["plans", i, "every_union_member"]]


def test_payers_come_from_payers_allowed() -> None:
    doc = document("beijing-2014")
    i = plan_index(doc, "critical")
    doc["plans"][i]["fee"]["payers"] = {"employer": "60.00", "landlord": "30.00"}
    assert locs(doc) == [["plans", i, "fee", "payers", "landlord"]]

    doc = document("beijing-2014")
    doc["enrolment"]["payers_allowed"] = ["employer", "employer"]
    assert locs(doc) == [["enrolment", "payers_allowed"]]

    doc = document("beijing-2014")
    doc["enrolment"]["payers_allowed"] = []
    assert locs(doc) == [["enrolment", "payers_allowed"]]


@pytest.mark.parametrize("shares", [0, "3", 2.0])
def test_shares_per_member_is_a_whole_number_of_at_least_one(shares: Any) -> None:
    doc = document("beijing-2014")
    doc["enrolment"]["shares_per_member"] = shares
    assert locs(doc) == [["enrolment", "shares_per_member"]]


def test_a_ratio_row_gives_exactly_one_bound() -> None:
    doc = document("yunnan-19")
    i = plan_index(doc, "second-aid")
    doc["plans"][i]["ratios"][1]["remaining_over"] = "99999.99"
    assert locs(doc) == [["plans", i, "ratios", 1, "remaining_from"]]

    doc = document("yunnan-19")
    del doc["plans"][i]["ratios"][2]["remaining_from"]
    assert locs(doc) == [["plans", i, "ratios", 2, "remaining_from"]]


def test_whole_base_bands_start_at_from_rise_and_never_lower_the_rate() -> None:
    doc = document("yuncheng-2024")
    doc["plans"][0]["bands"][1]["from"] = "2000.00"
    assert locs(doc) == [["plans", 0, "bands", 1, "from"]]

    doc = document("yuncheng-2024")
    doc["plans"][0]["bands"][1]["rate"] = "0.20"  # F would fall at 5,000: stays could not add up
    assert locs(doc) == [["plans", 0, "bands", 1, "rate"]]

    doc = document("yuncheng-2024")
    doc["plans"][0]["bands"][0]["over"] = "2000.00"
    del doc["plans"][0]["bands"][0]["from"]
    assert locs(doc) == [["plans", 0, "bands", 0, "over"], ["plans", 0, "bands", 0, "from"]]

    doc = document("yuncheng-2024")
    doc["plans"][0]["mode"] = "progressive"
    assert locs(doc) == [["plans", 0, "mode"]]


def test_marginal_bands_take_over_not_from() -> None:
    doc = document("yuncheng-2024")
    doc["plans"][0]["mode"] = "marginal"
    assert locs(doc) == [["plans", 0, "bands", j, key] for j in (0, 1) for key in ("from", "over")]

    doc = document("yunnan-18")
    doc["plans"][0]["bands"][0]["from"] = "800.00"
    assert locs(doc) == [["plans", 0, "bands", 0, "from"]]


def test_a_bare_yaml_rate_per_day_is_exact_and_a_fraction_of_a_fen_is_refused_by_name() -> None:
    text = (RULEBOOKS / "beijing-2014.yaml").read_text(encoding="utf-8")
    assert 'rate_per_day: "50.00"' in text
    plan = load_rulebook(text.replace('rate_per_day: "50.00"', "rate_per_day: 50.50")).plan("allowance")
    assert isinstance(plan, PerDayPlan) and plan.rate_per_day == D("50.50")
    with pytest.raises(RulebookError) as caught:
        load_rulebook(text.replace('rate_per_day: "50.00"', "rate_per_day: 50.505"))
    [error] = caught.value.errors
    assert error["loc"] == ["plans", 1, "rate_per_day"] and "金额" in error["msg"]
