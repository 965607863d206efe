"""The pure engine for issue #16: per-day allowances, graded sums, second aid per member and period, seed cases.

Every case cites its seed; numbers a seed does not give come from the project's rulebook (marked ASSUMED there).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.claims.domain.aid import assess_banded, assess_fixed, assess_second_aid, settlement_base
from services.claims.domain.benefits import (
    Stay,
    age_on,
    assess_graded,
    assess_per_day,
    assess_per_day_period,
    stay_days,
    term_covers,
)
from services.claims.domain.second_aid import PeriodStay, remaining_for_period
from shared.rulebook import (
    BandedPlan,
    FixedPlan,
    GradedPlan,
    PerDayPlan,
    Rulebook,
    SecondAidPlan,
    load_rulebook,
    parse_rulebook,
)
from tests.conftest import RULEBOOKS

D = Decimal
ZERO = D("0.00")
PROPERTY_SETTINGS = settings(max_examples=150, deadline=None)


def rulebook(name: str) -> Rulebook:
    return load_rulebook((RULEBOOKS / f"{name}.yaml").read_bytes())


BEIJING = rulebook("beijing-2014")
ALLOWANCE = BEIJING.plan("allowance")
ACCIDENT = BEIJING.plan("accident")
CHILD_ACCIDENT = BEIJING.plan("child-accident")
JINGKA = BEIJING.plan("jingka")
SECOND_AID = rulebook("yunnan-19").plan("second-aid")
NEIMENGGU = rulebook("neimenggu-2019").plan("inpatient")
assert isinstance(ALLOWANCE, PerDayPlan)
assert isinstance(ACCIDENT, GradedPlan) and isinstance(CHILD_ACCIDENT, GradedPlan)
assert isinstance(JINGKA, BandedPlan) and isinstance(NEIMENGGU, BandedPlan)
assert isinstance(SECOND_AID, SecondAidPlan)


def day(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


# --- per_day: Beijing 住院津贴 (seed 002; 50 a day, 3 days not paid, 180 days a period: ASSUMED in the file) ----------


@pytest.mark.parametrize(
    ("admission", "discharge", "days", "aid"),
    [
        ("2014-03-01", "2014-03-01", 0, "0.00"),  # admitted and discharged the same day: 0 days
        ("2014-03-01", "2014-03-04", 0, "0.00"),  # 3 days, all deductible
        ("2014-03-01", "2014-03-05", 1, "50.00"),
        ("2014-03-01", "2014-03-31", 27, "1350.00"),
        ("2014-02-20", "2014-03-02", 7, "350.00"),  # across the end of February (2014 is a common year)
        ("2014-01-01", "2014-12-31", 180, "9000.00"),  # 364 - 3 = 361 days, 180 paid at most
    ],
)
def test_beijing_allowance_table(admission: str, discharge: str, days: int, aid: str) -> None:
    assessment = assess_per_day(ALLOWANCE, day(admission), day(discharge))
    assert assessment.paid_days == days
    assert assessment.aid_amount == D(aid)


def test_the_period_stops_paying_days_at_its_cap_and_says_why() -> None:
    stays = [Stay(c, day(a), day(b)) for c, a, b in [
        ("a", "2014-01-01", "2014-04-11"),  # 100 days -> 97
        ("b", "2014-05-01", "2014-08-09"),  # 100 days -> 97, 83 left
        ("c", "2014-09-01", "2014-09-30"),  # 29 days -> 26, none left
    ]]
    first, second, third = assess_per_day_period(ALLOWANCE, stays)
    assert [a.paid_days for a in (first, second, third)] == [97, 83, 0]
    assert [a.aid_amount for a in (first, second, third)] == [D("4850.00"), D("4150.00"), D("0.00")]
    assert third.period_paid_days == 180 and "180" in second.explanation


def test_a_discharge_before_the_admission_is_refused() -> None:
    with pytest.raises(ValueError):
        stay_days(ALLOWANCE, day("2014-03-05"), day("2014-03-01"))
    with pytest.raises(ValueError):
        assess_per_day(ALLOWANCE, day("2014-03-01"), day("2014-03-05"), prior_paid_days=-1)


stay_dates = st.tuples(st.dates(dt.date(2014, 1, 1), dt.date(2014, 12, 31)), st.integers(0, 400)).map(
    lambda t: (t[0], t[0] + dt.timedelta(days=t[1]))
)


@PROPERTY_SETTINGS
@given(stays=st.lists(stay_dates, min_size=1, max_size=8), data=st.data())
def test_per_day_never_exceeds_the_cap_and_the_order_of_stays_never_changes_the_total(
    stays: list[tuple[dt.date, dt.date]], data: st.DataObject
) -> None:
    assert ALLOWANCE.max_days_per_period is not None
    as_stays = [Stay(str(i), a, b) for i, (a, b) in enumerate(stays)]
    shuffled = data.draw(st.permutations(as_stays))
    paid = assess_per_day_period(ALLOWANCE, as_stays)
    total = sum((a.aid_amount for a in paid), ZERO)
    assert total == sum((a.aid_amount for a in assess_per_day_period(ALLOWANCE, shuffled)), ZERO)
    assert total <= ALLOWANCE.rate_per_day * ALLOWANCE.max_days_per_period
    counted = sum(stay_days(ALLOWANCE, a, b) for a, b in stays)
    assert total == ALLOWANCE.rate_per_day * min(counted, ALLOWANCE.max_days_per_period)
    assert all(a.aid_amount >= 0 and a.aid_amount.as_tuple().exponent == -2 for a in paid)


# --- graded: Beijing 意外伤害 and 子女意外伤害 (seed 002; grades and amounts ASSUMED in the file) -----------------------


@pytest.mark.parametrize(
    ("grades", "aids"),
    [
        (["disability-10"], ["1000.00"]),
        (["disability-5", "disability-5"], ["5000.00", "5000.00"]),
        (["disability-5", "disability-5", "disability-10"], ["5000.00", "5000.00", "0.00"]),  # 10,000 a period
        (["disability-10", "death"], ["1000.00", "9000.00"]),
    ],
)
def test_beijing_accident_pays_the_grades_amount_within_the_yearly_cap(grades: list[str], aids: list[str]) -> None:
    prior = ZERO
    paid = []
    for grade in grades:
        assessment = assess_graded(ACCIDENT, grade, day("2014-06-01"), prior)
        assert assessment.refusal is None
        paid.append(assessment.aid_amount)
        prior = assessment.period_total
    assert paid == [D(a) for a in aids]
    assert prior <= D("10000.00")


def test_an_unknown_grade_is_refused_with_a_code_naming_the_known_ones() -> None:
    assessment = assess_graded(ACCIDENT, "disability-3", day("2014-06-01"))
    assert (assessment.aid_amount, assessment.refusal) == (ZERO, "grade_unknown")
    assert "disability-5" in assessment.explanation


@pytest.mark.parametrize(
    ("birth", "event", "refusal", "aid"),
    [
        ("2000-06-15", "2014-06-01", None, "6653.00"),
        ("1996-06-15", "2014-06-14", None, "6653.00"),  # 17 the day before the 18th birthday
        ("1996-06-15", "2014-06-15", "beneficiary_not_minor", "0.00"),  # 18 on the day
        ("1996-02-29", "2014-02-28", None, "6653.00"),  # a leap-day child is 18 on 1 March in a common year
        ("1996-02-29", "2014-03-01", "beneficiary_not_minor", "0.00"),
        ("2014-07-01", "2014-06-01", "beneficiary_not_born", "0.00"),
    ],
)
def test_the_child_plan_pays_for_a_child_under_18_on_the_day_of_the_event(
    birth: str, event: str, refusal: str | None, aid: str
) -> None:
    assessment = assess_graded(CHILD_ACCIDENT, "death", day(event), beneficiary_birth_date=day(birth))
    assert (assessment.refusal, assessment.aid_amount) == (refusal, D(aid))


def test_the_child_plan_needs_the_childs_birth_date_and_ages_are_whole_years() -> None:
    with pytest.raises(ValueError):
        assess_graded(CHILD_ACCIDENT, "death", day("2014-06-01"))
    assert age_on(day("2000-01-01"), day("2017-12-31")) == 17
    assert age_on(day("2000-01-01"), day("2018-01-01")) == 18


# --- once_per: term: Beijing 重大疾病 "三年90元" (seed 002) ------------------------------------------------------------


def test_a_three_year_critical_illness_fee_covers_its_period_and_the_next_two_and_pays_once() -> None:
    critical, women = BEIJING.plan("critical"), BEIJING.plan("women")
    assert isinstance(critical, FixedPlan) and isinstance(women, FixedPlan)
    assert [term_covers(critical, 4, claim) for claim in (3, 4, 5, 6, 7)] == [False, True, True, True, False]
    assert [term_covers(women, 4, claim) for claim in (3, 4, 5)] == [False, True, False]
    first = assess_fixed(critical, "C53.9", "2", already_paid_in_period=False)
    again = assess_fixed(critical, "I21.0", "1", already_paid_in_period=True)  # paid earlier in the term
    assert (first.aid_amount, again.aid_amount) == (D("50000.00"), ZERO)


# --- 京卡 (seed 002): an outpatient banded plan, fee-free (ASSUMED 50% over 1,800, 2,000 a period) -----------------


def test_jingka_pays_outpatient_costs_over_its_start_point_within_its_cap() -> None:
    assert assess_banded(JINGKA, ZERO, D("1800.00")).aid_amount == ZERO
    assert assess_banded(JINGKA, ZERO, D("3800.00")).aid_amount == D("1000.00")
    assert assess_banded(JINGKA, ZERO, D("9000.00")).aid_amount == D("2000.00")


# --- second aid per member and period (seed 000) -------------------------------------------------------------------


def test_chen_songs_case_from_seed_000() -> None:
    # Seed 000: 陈松, 2023, 华西医院, "住院总费用高达180.97万元，其中医保报销71.85万元，自付费用仍高达109.12万元"; first aid
    # "36.20万元"; second aid "预计可获得36.46万元". Remaining = 1,091,200 - 362,000 = 729,200; 50% (the 10-year row of
    # yunnan-19.yaml, ASSUMED there so that this case comes out; he had joined many periods) = 364,600.
    stays = [PeriodStay(D("612000.00"), D("205000.00")), PeriodStay(D("479200.00"), D("157000.00"))]
    remaining = remaining_for_period(stays)
    assert remaining == D("729200.00")
    assessment = assess_second_aid(SECOND_AID, remaining, years=19)
    assert assessment.aid_amount == D("364600.00")
    assert D("362000.00") + assessment.aid_amount == D("726600.00")  # "两次补助将获得72.65万元"


def test_remaining_counts_live_stays_only_and_takes_off_other_union_assistance() -> None:
    stays = [
        PeriodStay(D("150000.00"), D("40000.00")),
        PeriodStay(D("90000.00"), D("30000.00"), live=False),  # reversed settlement: no longer counts
        PeriodStay(D("20000.00"), D("5000.00")),
    ]
    assert remaining_for_period(stays) == D("125000.00")
    assert remaining_for_period(stays, other_assistance=D("25000.00")) == D("100000.00")
    assert remaining_for_period(stays, other_assistance=D("200000.00")) == ZERO
    with pytest.raises(ValueError):
        remaining_for_period(stays, other_assistance=D("-1.00"))
    with pytest.raises(ValueError):
        remaining_for_period(stays, other_assistance=D("0.001"))


@pytest.mark.parametrize(
    ("remaining", "years", "aid"),
    [
        ("99999.99", 20, "0.00"),
        ("100000.00", 1, "30000.00"),  # "10万元（含）": the threshold itself qualifies
        ("100000.00", 4, "30000.00"),
        ("100000.00", 5, "40000.00"),
        ("100000.00", 9, "40000.00"),
        ("100000.00", 10, "50000.00"),
        ("100000.00", 0, "0.00"),  # no row for under a year
    ],
)
def test_the_row_with_the_greatest_years_from_applies(remaining: str, years: int, aid: str) -> None:
    assert assess_second_aid(SECOND_AID, D(remaining), years).aid_amount == D(aid)


def test_max_aid_caps_the_members_second_aid_in_the_period_not_each_claim() -> None:
    # seed 000 "最高不超过50万元"; the issue: max_aid caps the member's second aid per period.
    first = assess_second_aid(SECOND_AID, D("1200000.00"), 12)
    assert first.aid_amount == D("500000.00")
    assert assess_second_aid(SECOND_AID, D("1200000.00"), 12, prior_aid_in_period=first.period_total).aid_amount == ZERO
    part = assess_second_aid(SECOND_AID, D("300000.00"), 12, prior_aid_in_period=D("400000.00"))
    assert (part.aid_amount, part.period_total) == (D("100000.00"), D("500000.00"))


def test_rows_of_several_inclusive_bounds_pick_the_greatest_bound_reached() -> None:
    doc = rulebook("yunnan-19").to_document()
    doc["plans"][1]["ratios"] = [
        {"years_from": 1, "remaining_from": "100000.00", "rate": "0.30"},
        {"years_from": 1, "remaining_from": "300000.00", "rate": "0.35"},
        {"years_from": 10, "remaining_from": "100000.00", "rate": "0.50"},
        {"years_from": 10, "remaining_from": "300000.00", "rate": "0.60"},
    ]
    plan = parse_rulebook(doc).plan("second-aid")
    assert isinstance(plan, SecondAidPlan)
    assert assess_second_aid(plan, D("300000.00"), 10).aid_amount == D("180000.00")
    assert assess_second_aid(plan, D("299999.99"), 10).aid_amount == D("150000.00")  # 149,999.995 half up
    assert assess_second_aid(plan, D("300000.00"), 3).aid_amount == D("105000.00")


@PROPERTY_SETTINGS
@given(
    parts=st.lists(st.tuples(st.integers(0, 50_000_000), st.integers(0, 50_000_000), st.booleans()), max_size=6),
    other=st.integers(0, 20_000_000),
    years=st.integers(0, 30),
)
def test_second_aid_never_exceeds_its_cap_or_the_remaining_and_stays_in_fen(
    parts: list[tuple[int, int, bool]], other: int, years: int
) -> None:
    stays = [PeriodStay(D(p).scaleb(-2), D(min(a, p)).scaleb(-2), live) for p, a, live in parts]
    remaining = remaining_for_period(stays, D(other).scaleb(-2))
    aid = assess_second_aid(SECOND_AID, remaining, years).aid_amount
    assert ZERO <= aid <= min(SECOND_AID.max_aid, remaining)
    assert aid.as_tuple().exponent == -2
    assert (aid > 0) == (remaining >= SECOND_AID.threshold and years >= 1)


# --- Inner Mongolia's league cases (seed 004): the base is in-scope cost minus the fund's payment ---------------


def test_wulanchabu_base_is_in_scope_cost_minus_the_pooled_funds_payment() -> None:
    # 乌兰察布 郝女士 (seed 004): "总费用68.11万元，符合基本医疗费用48.22万元，统筹支付24.74万元". The base is 482,200 -
    # 247,400 = 234,800, not what she paid in all. (Her first claim "申领互助金20.07万元" cannot be checked: the text
    # gives no bands, so neimenggu-2019.yaml's bands are ASSUMED.)
    settlement = {"inscp_scp_amt": D("482200.00"), "hifp_pay": D("247400.00"), "medfee_sumamt": D("681100.00")}
    assert settlement_base(NEIMENGGU, settlement) == D("234800.00")


def test_wulanchabu_five_claims_in_a_period_stop_at_250000() -> None:
    # 乌兰察布 郝女士 "在2020年经过5次报销，累计申领互助金25万元"; 锡林郭勒 张女士 "报销25万元"; 乌海 "最高申领补助金25万元".
    prior_base = prior_aid = ZERO
    for base in [D("234800.00"), D("120000.00"), D("90000.00"), D("80000.00"), D("60000.00")]:
        assessment = assess_banded(NEIMENGGU, prior_base, base, prior_aid, prior_aid)
        prior_base, prior_aid = assessment.cumulative_base, assessment.period_total
    assert prior_aid == D("250000.00")


def test_alashan_pays_more_than_250000_only_across_two_periods() -> None:
    # 阿拉善 刘先生 (seed 004): "2020年2月—2021年5月，先后住院8次，共申领职工医疗互助补助345406.23元": more than one
    # period's 250,000, so the stays fell in two periods; each period alone stays within 250,000.
    all_periods = ZERO
    for bases in ([D("300000.00"), D("200000.00")], [D("150000.00"), D("80000.00")]):
        prior_base = in_period = ZERO
        for base in bases:
            assessment = assess_banded(NEIMENGGU, prior_base, base, in_period, all_periods)
            prior_base, in_period = assessment.cumulative_base, assessment.period_total
            all_periods += assessment.aid_amount
        assert in_period <= D("250000.00")
    assert all_periods > D("250000.00")
