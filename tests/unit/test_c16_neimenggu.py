"""Inner Mongolia (seed 004): the league cases against rulebooks/neimenggu-2019.yaml and its 森工集团 copy.

Each case quotes seed 004. The bands are ASSUMED in the files (the 实施细则 is not among our sources), so the
cases test what the text does fix: the base, the 250,000 a period, no participation ratio, who pays the fee,
the 女性馨康 sums, and every claim decided by the association.
"""

from __future__ import annotations

import random
from datetime import date
from decimal import Decimal

import pytest

from deploy.people import certno as make_certno
from services.claims.domain.aid import assess_banded, assess_fixed, settlement_base
from services.claims.domain.routing import review_path
from services.enrollment.domain.roster_rules import RosterMember, Staff, check_roster
from shared.rulebook import RULEBOOKS_DIR, BandedPlan, FixedPlan, Rulebook, load_rulebook

D = Decimal
ZERO = D("0.00")
CAP = D("250000.00")


def rulebook(name: str) -> Rulebook:
    return load_rulebook((RULEBOOKS_DIR / f"{name}.yaml").read_text(encoding="utf-8"))


REGION, SENGONG = rulebook("neimenggu-2019"), rulebook("neimenggu-2019-sengong")
BOTH = pytest.mark.parametrize("rb", [REGION, SENGONG], ids=["region", "sengong"])


def inpatient(rb: Rulebook) -> BandedPlan:
    plan = rb.plan("inpatient")
    assert isinstance(plan, BandedPlan)
    return plan


def xinkang(rb: Rulebook) -> FixedPlan:
    plan = rb.plan("xinkang")
    assert isinstance(plan, FixedPlan)
    return plan


def period_total(plan: BandedPlan, bases: list[str]) -> Decimal:
    """What a member's stays in one period are paid in all, stay by stay (cumulative, 250,000 at most)."""
    prior_base = in_period = ZERO
    for base in bases:
        assessment = assess_banded(plan, prior_base, D(base), in_period, in_period)
        prior_base, in_period = assessment.cumulative_base, assessment.period_total
    return in_period


@BOTH
def test_wulanchabu_base_is_the_in_scope_cost_minus_the_pooled_funds_payment(rb: Rulebook) -> None:
    # 乌兰察布 郝女士: "总费用68.11万元，符合基本医疗费用48.22万元，统筹支付24.74万元" -> 482,200 - 247,400
    settlement = {"medfee_sumamt": D("681100.00"), "inscp_scp_amt": D("482200.00"), "hifp_pay": D("247400.00"),
                  "psn_part_amt": D("433700.00"), "fulamt_ownpay_amt": D("198900.00")}
    assert settlement_base(inpatient(rb), settlement) == D("234800.00")


@BOTH
@pytest.mark.parametrize(("case", "periods", "total"), [
    # 乌兰察布 郝女士 "在2020年经过5次报销，累计申领互助金25万元": five stays, one period, stopped at the cap
    ("乌兰察布 郝女士", [["234800.00", "120000.00", "90000.00", "80000.00", "60000.00"]], "250000.00"),
    # 锡林郭勒 张女士 "经过一年多的治疗，通过职工医疗互助中心报销25万元"
    ("锡林郭勒 张女士", [["400000.00", "300000.00"]], "250000.00"),
    # 鄂尔多斯 杜先生 "前后住院5次共303天，6次申领…共计500000元": two periods, each at the cap
    ("鄂尔多斯 杜先生", [["300000.00", "200000.00", "150000.00"], ["350000.00", "250000.00"]], "500000.00"),
])
def test_league_cases_stop_at_250000_a_period(rb: Rulebook, case: str, periods: list[list[str]],
                                             total: str) -> None:
    plan = inpatient(rb)
    assert plan.max_aid_per_period == CAP
    totals = [period_total(plan, bases) for bases in periods]
    assert all(t <= CAP for t in totals), case
    assert sum(totals, ZERO) == D(total), case


@BOTH
def test_no_participation_ratio_any_number_of_a_units_staff_may_join(rb: Rulebook) -> None:
    # Seed 004 states no participation ratio (the 70% / 30-staff rule is Beijing's, seed 002).
    rule = rb.enrolment.participation
    assert rule.min_ratio == ZERO and rule.small_unit.min_ratio == ZERO
    rng = random.Random(4)
    one = RosterMember(name="乌云其木格", certno=make_certno(rng, region="150102"), phone="13904710001", sex="female",
                       member_type="in_service", bank_account="6222021234567890128", bank_name="中国工商银行呼和浩特分行",
                       insurance=("basic_medical",))
    found = check_roster(rb, Staff(total=800, in_service=750, basic_insured_in_service=750), [one],
                         today=rb.windows.enrolment.from_, enrolled_elsewhere=set())
    assert [e["code"] for e in found.errors] == []


def test_the_fee_split_is_sengongs_alone() -> None:
    # 森工集团: "党委…补助50元，森工集团工会…补助10元，加之自治区总工会…补贴10元，林区职工个人每期只承担30元";
    # 女性馨康 "行政全额补贴每人35元". The region's file splits nothing.
    assert SENGONG.enrolment.fee.payers == {"employer": D("50.00"), "company_union": D("10.00"),
                                            "regional_union": D("10.00"), "member": D("30.00")}
    assert xinkang(SENGONG).fee is not None and xinkang(SENGONG).fee.payers == {"employer": D("35.00")}
    assert REGION.enrolment.fee.payers is None
    assert xinkang(REGION).fee is not None and xinkang(REGION).fee.payers is None


@pytest.mark.parametrize("rb", [REGION, SENGONG, rulebook("neimenggu-2022")], ids=["region", "sengong", "2022"])
@pytest.mark.parametrize(("case", "icd10", "sex", "aid"), [
    ("兴安盟 李女士 子宫肌瘤 子宫切除 22000元", "D25.9", "female", "22000.00"),
    ("a man is not covered by the women's plan", "D25.9", "male", "0.00"),
])
def test_xinkang_pays_the_sums_of_the_text(rb: Rulebook, case: str, icd10: str, sex: str, aid: str) -> None:
    # 森工 张女士's 32,000 for 乳房恶性肿瘤 is a 2022 payment (seed 004 "2022年，职工张女士因患乳房恶性肿瘤…32000元"):
    # tests/unit/test_nm16_neimenggu.py checks it against neimenggu-2022.yaml and the 2019 files without it.
    assert assess_fixed(xinkang(rb), icd10, sex, already_paid_in_period=False).aid_amount == D(aid), case


@BOTH
def test_xinkang_fee_is_35_as_hohhots_figures_give(rb: Rulebook) -> None:
    # 呼和浩特 "覆盖女职工26537人，总金额为928795元": 35.00 each
    assert D("928795") / D("26537") == D("35")
    fee = xinkang(rb).fee
    assert fee is not None and fee.new == fee.renewal == D("35.00")


def test_xinkangs_known_sums_cannot_be_the_whole_list() -> None:
    # 呼和浩特 "21名女职工成功申领女性馨康互助保障金406000元": even at the smallest sum the text gives, 21 claims
    # would be 462,000; so smaller sums exist that the text does not give (the file says so).
    smallest = min(b.amount for b in xinkang(REGION).benefits)
    assert 21 * smallest > D("406000")


@BOTH
@pytest.mark.parametrize("aid", ["0.00", "1546.21", "250000.00"])
def test_every_claim_is_decided_by_the_association(rb: Rulebook, aid: str) -> None:
    # 阿拉善 "资料数据齐全的2日内提交自治区互助协会审核": the league checks, the association decides, any aid
    assert review_path(rb.approval, D(aid)) == ["agency_point", "centre"]


@BOTH
def test_a_day_surgery_stay_is_inpatient_care(rb: Rulebook) -> None:
    assert "28" in (inpatient(rb).med_types or [])


def test_the_two_files_differ_only_in_who_pays() -> None:
    region, sengong = REGION.to_document(), SENGONG.to_document()
    for doc in (region, sengong):
        doc.pop("code"), doc.pop("name")
        doc["enrolment"]["fee"].pop("payers", None)
        for plan in doc["plans"]:
            if plan.get("fee"):
                plan["fee"].pop("payers", None)
    assert region == sengong
    assert date(2019, 7, 1) == REGION.windows.coverage.from_
