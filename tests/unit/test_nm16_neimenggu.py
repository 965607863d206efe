"""Inner Mongolia (seed 004) as the text says, period by period: what the 2019 and 2022 rulebooks pay.

- 女性馨康: the 32,000 for 乳房恶性肿瘤 is a 2022 payment (森工 "2022年，职工张女士因患乳房恶性肿瘤…32000元"), so only
  neimenggu-2022.yaml pays it. The 2019 payment for the same disease, 兴安盟 "职工张女士2019年因患乳腺癌申领互助金
  16582.99元", is given without her cost or a rate, so no rule of the format computes it: the 2019 files list no
  sum for C50 and refuse it (aid 0.00, the reviewer sees why) until the 2019 实施细则 is read.
- No lifetime cap: the text states none; 鄂尔多斯 杜先生's 500,000 is two periods at 250,000 each.
- 乌兰察布 郝女士's 20.07万 on a base of 234,800 cannot fix the bands (one equation, several unknowns): the files'
  bands are ASSUMED and pay 130,480.00 on it; the base and the cap are what the text fixes.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from services.claims.domain.aid import assess_banded, assess_fixed, settlement_base
from shared.rulebook import RULEBOOKS_DIR, BandedPlan, Rulebook, load_rulebook
from tests.unit.test_c16_neimenggu import inpatient, rulebook, xinkang

D = Decimal
ZERO = D("0.00")
CAP = D("250000.00")


NMG_2019 = {name: rulebook(name) for name in ("neimenggu-2019", "neimenggu-2019-sengong")}
NMG_2022 = rulebook("neimenggu-2022")
EVERY = {**NMG_2019, "neimenggu-2022": NMG_2022}
IN_2019 = pytest.mark.parametrize("rb", list(NMG_2019.values()), ids=list(NMG_2019))
IN_EVERY = pytest.mark.parametrize("rb", list(EVERY.values()), ids=list(EVERY))


def every_inner_mongolia_file() -> set[str]:
    return {p.stem for p in RULEBOOKS_DIR.glob("*.yaml")
            if load_rulebook(p.read_text(encoding="utf-8")).scheme == "neimenggu"}


def test_the_tests_here_cover_every_inner_mongolia_rulebook() -> None:
    assert every_inner_mongolia_file() == set(EVERY)


# --- 女性馨康 -------------------------------------------------------------------------------------------------


@IN_2019
@pytest.mark.parametrize("icd10", ["C50.901", "C50.9", "C50"])
def test_2019_breast_cancer_gets_no_fixed_sum_the_text_does_not_give(rb: Rulebook, icd10: str) -> None:
    # 兴安盟 张女士 2019 乳腺癌 16582.99: not a fixed sum of the text, not computable; and never 2022's 32,000.
    assessment = assess_fixed(xinkang(rb), icd10, "female", already_paid_in_period=False)
    assert assessment.aid_amount == ZERO
    assert "不在女性馨康互助保障的病种目录内" in assessment.explanation
    assert all(b.amount != D("32000.00") for b in xinkang(rb).benefits)


@pytest.mark.parametrize(("case", "icd10", "sex", "aid"), [
    ("森工 2022 张女士 乳房恶性肿瘤 32000元", "C50.901", "female", "32000.00"),
    ("the same as a settlement codes her sex (GB/T 2261.1)", "C50.901", "2", "32000.00"),
    ("通辽 2022 张女士 女性特殊疾病 2.2万 (C53 ASSUMED)", "C53.9", "female", "22000.00"),
    ("兴安盟 李女士 子宫肌瘤 子宫切除 22000元", "D25.9", "female", "22000.00"),
    ("a man is not covered by the women's plan", "C50.901", "male", "0.00"),
    ("an unlisted diagnosis", "N80.0", "female", "0.00"),
])
def test_2022_xinkang_pays_the_2022_sums(case: str, icd10: str, sex: str, aid: str) -> None:
    assert assess_fixed(xinkang(NMG_2022), icd10, sex, already_paid_in_period=False).aid_amount == D(aid), case


@IN_2019
@pytest.mark.parametrize(("icd10", "aid"), [("D25.9", "22000.00"), ("C53.9", "0.00")])
def test_2019_xinkang_pays_only_what_no_other_year_claims(rb: Rulebook, icd10: str, aid: str) -> None:
    # 兴安盟 李女士's 22,000 has no year (ASSUMED 2019 and 2022 alike); 通辽's 2.2万 is 2022's.
    assert assess_fixed(xinkang(rb), icd10, "female", already_paid_in_period=False).aid_amount == D(aid)


def test_2019s_known_womens_payments_are_not_one_fixed_list() -> None:
    # 呼和浩特 2019 "21名女职工成功申领女性馨康互助保障金406000元" averages 19,333.33; the only 2019 sum on file is
    # 22,000, so 21 of them would be 462,000: smaller payments, like 张女士's 16,582.99, are outside the list.
    [only] = xinkang(NMG_2019["neimenggu-2019"]).benefits
    assert 21 * only.amount > D("406000")
    assert D("16582.99") < only.amount


def test_2022_sums_cannot_be_the_whole_list_either() -> None:
    # 阿拉善 "自2022年度女性馨康互助活动开展以来，共有13人次申领总金额31.45万元": no mix of 13 sums of the file.
    amounts = sorted({b.amount for b in xinkang(NMG_2022).benefits})
    assert amounts == [D("22000.00"), D("32000.00")]
    assert all(k * amounts[1] + (13 - k) * amounts[0] != D("314500") for k in range(14))


# --- the inpatient plan: 250,000 a period, no lifetime cap ---------------------------------------------------


def period_total(plan: BandedPlan, bases: list[str], all_periods_before: Decimal) -> Decimal:
    prior_base = in_period = ZERO
    for base in bases:
        assessment = assess_banded(plan, prior_base, D(base), in_period, all_periods_before + in_period)
        prior_base, in_period = assessment.cumulative_base, assessment.period_total
    return in_period


@IN_EVERY
def test_no_lifetime_cap_the_text_does_not_state(rb: Rulebook) -> None:
    plan = inpatient(rb)
    assert plan.max_aid_per_member is None
    assert plan.max_aid_per_period == CAP


@IN_EVERY
def test_du_xiansheng_500000_is_two_periods_at_the_cap_and_a_third_period_still_pays(rb: Rulebook) -> None:
    # 鄂尔多斯 杜先生 "前后住院5次共303天，6次申领职工医疗互助保障金，共计500000元"
    plan = inpatient(rb)
    first = period_total(plan, ["300000.00", "200000.00", "150000.00"], ZERO)
    second = period_total(plan, ["350000.00", "250000.00", "40000.00"], first)
    assert (first, second) == (CAP, CAP)
    assert first + second == D("500000.00")
    # Nothing in the text stops a third period: it pays as the first would.
    third = period_total(plan, ["100000.00"], first + second)
    assert third == period_total(plan, ["100000.00"], ZERO) == D("49600.00")


# --- 乌兰察布: the base is fixed by the text, the bands are not -------------------------------------------------


@IN_EVERY
def test_wulanchabu_case_fixes_the_base_but_not_the_bands(rb: Rulebook) -> None:
    # "总费用68.11万元，符合基本医疗费用48.22万元，统筹支付24.74万元 … 申领互助金20.07万元"
    plan = inpatient(rb)
    base = settlement_base(plan, {"medfee_sumamt": D("681100.00"), "inscp_scp_amt": D("482200.00"),
                                  "hifp_pay": D("247400.00"), "psn_part_amt": D("433700.00"),
                                  "fulamt_ownpay_amt": D("198900.00")})
    assert base == D("234800.00")
    # The 万元 figures round by up to 50: the aid was 85.42%-85.54% of the base. One equation for a start, bounds
    # and rates: two unlike band sets both fit, so the text cannot choose the bands.
    one_rate, deductible = D("0.8548") * base, D("0.90") * (base - D("11800"))
    assert all(D("200650") <= aid < D("200750") for aid in (one_rate, deductible))
    # The files' ASSUMED bands (40% over 1,000 to 50,000, 60% above) pay less, and say so in their comment.
    assert assess_banded(plan, ZERO, base).aid_amount == D("130480.00")
