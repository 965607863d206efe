"""Yuncheng (seed 001, rulebooks/yuncheng-2024.yaml): the band reading from the 程军刚 case, claims filed by the
unit union, every claim approved by the city centre."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from services.claims.domain.aid import assess_banded, settlement_base
from services.claims.domain.routing import final_level, review_path
from shared.rulebook import RULEBOOKS_DIR, BandedPlan, Rulebook, load_rulebook, parse_rulebook

D = Decimal
YUNCHENG = load_rulebook((RULEBOOKS_DIR / "yuncheng-2024.yaml").read_text(encoding="utf-8"))

# 程军刚 (seed 001): "总费用1.9万余元，医保报销差不多1.4万元，职工医疗互助还报销将近1000元". The rounded figures: a
# settlement of 19,000 of which the fund paid 14,000, nothing fully self-paid.
CHENG_JUNGANG = {"medfee_sumamt": D("19000.00"), "fund_pay_sumamt": D("14000.00"), "psn_part_amt": D("5000.00"),
                 "fulamt_ownpay_amt": D("0.00")}

OLD_RATES = ("0.15", "0.20")  # "由15%上调为25%", "由20%上调为30%"
NEW_RATES = ("0.25", "0.30")


def reading(mode: str, rates: tuple[str, str]) -> BandedPlan:
    """The project's inpatient plan read one way: whole-base (as the file says) or marginal bands."""
    doc: dict[str, Any] = YUNCHENG.to_document()
    plan = doc["plans"][0]
    low, high = rates
    plan["mode"] = mode
    plan["bands"] = [{"from": "2000.00", "rate": low}, {"from": "5000.00", "rate": high}] if mode == "whole_base" \
        else [{"over": "2000.00", "upto": "5000.00", "rate": low}, {"over": "5000.00", "rate": high}]
    plan["max_aid_per_period"] = "20000.00" if rates == OLD_RATES else "30000.00"  # "由两万元上调为3万元"
    read = parse_rulebook(doc).plan("inpatient")
    assert isinstance(read, BandedPlan)
    return read


@pytest.mark.parametrize(("mode", "rates", "aid", "about_1000"), [
    ("whole_base", OLD_RATES, "1000.00", True),   # 20% x 5,000: the case's "将近1000元"
    ("marginal", OLD_RATES, "450.00", False),     # 15% x (5,000 - 2,000)
    ("marginal", NEW_RATES, "750.00", False),     # 25% x (5,000 - 2,000)
    ("whole_base", NEW_RATES, "1500.00", False),  # 30% x 5,000: what the project's rulebook pays this case now
])
def test_cheng_jungangs_case_fits_one_rate_on_the_whole_base(mode: str, rates: tuple[str, str], aid: str,
                                                             about_1000: bool) -> None:
    plan = reading(mode, rates)
    base = settlement_base(plan, CHENG_JUNGANG)
    assert base == D("5000.00")
    paid = assess_banded(plan, D("0.00"), base).aid_amount
    assert paid == D(aid)
    assert (D("900.00") <= paid <= D("1000.00")) == about_1000


def test_the_projects_file_is_the_whole_base_reading_at_this_years_rates() -> None:
    plan = YUNCHENG.plan("inpatient")
    assert isinstance(plan, BandedPlan) and plan.mode == "whole_base"
    assert plan == reading("whole_base", NEW_RATES)


@pytest.mark.parametrize(("base", "aid"), [
    ("1999.99", "0.00"),      # below the first band's start
    ("2000.00", "500.00"),    # "2000元（含）": 25% of all of it
    ("4999.99", "1250.00"),   # 25% x 4,999.99 = 1,249.9975 -> 1,250.00 (half up, once)
    ("5000.00", "1500.00"),   # "5000元（含）以上": 30% of all of it
    ("100000.00", "30000.00"),  # "一个互助期内最高报销限额…3万元"
])
def test_the_rulebook_pays_these_bases(base: str, aid: str) -> None:
    plan = YUNCHENG.plan("inpatient")
    assert isinstance(plan, BandedPlan)
    assert assess_banded(plan, D("0.00"), D(base)).aid_amount == D(aid)


@pytest.mark.parametrize("aid", ["0.00", "500.00", "30000.00"])
def test_every_claim_is_approved_by_the_city_centre_after_the_county(aid: str) -> None:
    # 补助流程 ② the county union checks and sends it on, ③④ the city centre reviews and approves
    assert review_path(YUNCHENG.approval, D(aid)) == ["agency_point", "centre"]
    assert final_level(YUNCHENG.approval, D(aid)) == "centre"


def test_claims_are_filed_by_the_unit_union() -> None:
    assert YUNCHENG.filed_by == "unit" and not YUNCHENG.members_may_file
    yunnan = load_rulebook((RULEBOOKS_DIR / "yunnan-18.yaml").read_text(encoding="utf-8"))
    assert yunnan.filed_by is None and yunnan.members_may_file


def test_an_approving_level_outside_the_tiers_is_refused() -> None:
    doc: dict[str, Any] = YUNCHENG.to_document()
    doc["approval"]["approved_by"] = "office"
    with pytest.raises(ValueError, match="approved_by"):
        parse_rulebook(doc)


def rulebook_without_approved_by() -> Rulebook:
    doc: dict[str, Any] = YUNCHENG.to_document()
    del doc["approval"]["approved_by"]
    return parse_rulebook(doc)


def test_without_approved_by_an_aid_of_zero_would_stop_at_the_county() -> None:
    assert final_level(rulebook_without_approved_by().approval, D("0.00")) == "agency_point"
