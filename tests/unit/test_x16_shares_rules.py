"""Several shares of a plan (seed 002 "自己是不是可以多买几份"): the pure reading of domain/shares.py, table by table,
on the project's Beijing rulebook (amounts there are ASSUMED; the multiplication is the point)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from services.claims.domain.aid import assess_banded, assess_fixed
from services.claims.domain.benefits import assess_graded, assess_per_day
from services.claims.domain.shares import in_shares, multiplied_by_shares, shares_note
from shared.rulebook import BandedPlan, FixedPlan, GradedPlan, PerDayPlan, Rulebook, load_rulebook
from tests.conftest import RULEBOOKS

D = Decimal


def rulebook(name: str) -> Rulebook:
    return load_rulebook((RULEBOOKS / f"{name}.yaml").read_bytes())


BEIJING = rulebook("beijing-2014")
YUNNAN = rulebook("yunnan-18")


def held(code: str, shares: int) -> object:
    return in_shares(BEIJING, BEIJING.plan(code), shares)


@pytest.mark.parametrize(("code", "multiplied"), [
    ("inpatient", True), ("allowance", True), ("critical", True), ("women", True), ("accident", True),
    ("child-accident", True),
    ("jingka", False),  # every_union_member: "不用花一分钱保费", nobody buys it
])
def test_which_beijing_plans_the_shares_multiply(code: str, multiplied: bool) -> None:
    assert multiplied_by_shares(BEIJING, BEIJING.plan(code)) is multiplied


def test_yunnan_plans_without_own_fee_and_the_loyalty_grant_and_second_aid_are_not_multiplied() -> None:
    yunnan19 = rulebook("yunnan-19")
    granted = YUNNAN.enrolment.loyalty.grants if YUNNAN.enrolment.loyalty else None
    assert granted is not None
    assert multiplied_by_shares(YUNNAN, YUNNAN.plan(granted)) is False
    assert multiplied_by_shares(YUNNAN, YUNNAN.plan("inpatient")) is False  # paid by the enrolment fee
    assert multiplied_by_shares(yunnan19, yunnan19.plan("second-aid")) is False
    assert in_shares(YUNNAN, YUNNAN.plan(granted), 3) is YUNNAN.plan(granted)


@pytest.mark.parametrize(("shares", "admission", "discharge", "prior_days", "aid"), [
    (1, "2014-03-01", "2014-03-11", 0, "350.00"),   # 10 days - 3 deductible = 7 x 50.00
    (2, "2014-03-01", "2014-03-11", 0, "700.00"),   # 7 x 100.00
    (3, "2014-03-01", "2014-03-11", 0, "1050.00"),  # 7 x 150.00
    (3, "2014-03-01", "2014-03-03", 0, "0.00"),     # 2 days, all deductible: nothing, whatever the shares
    (3, "2014-03-01", "2014-03-11", 178, "300.00"),  # the 180 days stop at 180 (days are not multiplied): 2 x 150
])
def test_per_day_rate_times_shares_days_not(shares: int, admission: str, discharge: str, prior_days: int,
                                            aid: str) -> None:
    plan = held("allowance", shares)
    assert isinstance(plan, PerDayPlan)
    result = assess_per_day(plan, dt.date.fromisoformat(admission), dt.date.fromisoformat(discharge), prior_days)
    assert result.aid_amount == D(aid)
    assert plan.max_days_per_period == 180 and plan.deductible_days == 3


@pytest.mark.parametrize(("shares", "grade", "prior", "aid"), [
    (1, "disability-5", "0.00", "5000.00"),
    (2, "disability-5", "0.00", "10000.00"),
    (3, "disability-10", "0.00", "3000.00"),
    (2, "death", "0.00", "20000.00"),           # the cap 10,000 x 2 = 20,000 lets it through
    (2, "death", "15000.00", "5000.00"),        # room left under the doubled cap
    (1, "death", "5000.00", "5000.00"),         # one share: the plain cap
])
def test_graded_sums_and_cap_times_shares(shares: int, grade: str, prior: str, aid: str) -> None:
    plan = held("accident", shares)
    assert isinstance(plan, GradedPlan)
    result = assess_graded(plan, grade, dt.date(2014, 5, 1), D(prior))
    assert result.refusal is None and result.aid_amount == D(aid)


@pytest.mark.parametrize(("shares", "grade", "aid"), [(1, "disability-10", "600.00"), (2, "disability-10", "1200.00"),
                                                      (3, "death", "19959.00")])
def test_child_accident_times_shares(shares: int, grade: str, aid: str) -> None:
    plan = held("child-accident", shares)
    assert isinstance(plan, GradedPlan)
    result = assess_graded(plan, grade, dt.date(2014, 5, 1), D("0.00"), dt.date(2008, 2, 29))
    assert result.aid_amount == D(aid)


@pytest.mark.parametrize(("shares", "icd10", "sex", "aid"), [
    (1, "C53.9", "female", "10000.00"), (2, "C53.9", "female", "20000.00"), (3, "C53.9", "male", "0.00"),
])
def test_fixed_sums_times_shares(shares: int, icd10: str, sex: str, aid: str) -> None:
    plan = held("women", shares)
    assert isinstance(plan, FixedPlan)
    assert assess_fixed(plan, icd10, sex, already_paid_in_period=False).aid_amount == D(aid)
    critical = held("critical", shares)
    assert isinstance(critical, FixedPlan)
    assert assess_fixed(critical, "I21.0", "male", already_paid_in_period=False).aid_amount == D("50000.00") * shares


@pytest.mark.parametrize(("shares", "base", "aid"), [
    (1, "3300.00", "1000.00"),    # (3,300 - 1,300) x 50%
    (2, "3300.00", "2000.00"),    # rate x 2 on the same part of the cost: the bounds are not multiplied
    (3, "1300.01", "0.02"),       # 0.01 x 150% = 0.015, rounded once, half up (one share alone: 0.01)
    (2, "40000.00", "30000.00"),  # the 15,000 cap x 2
])
def test_banded_rates_and_caps_times_shares(shares: int, base: str, aid: str) -> None:
    plan = held("inpatient", shares)
    assert isinstance(plan, BandedPlan)
    assert assess_banded(plan, D("0.00"), D(base)).aid_amount == D(aid)


def test_jingka_is_the_same_for_every_share_count() -> None:
    plan = BEIJING.plan("jingka")
    assert in_shares(BEIJING, plan, 3) is plan
    assert isinstance(plan, BandedPlan)
    assert assess_banded(plan, D("0.00"), D("2800.00")).aid_amount == D("500.00")  # (2,800 - 1,800) x 50%


@pytest.mark.parametrize("shares", [0, -1, True])
def test_shares_must_be_a_whole_number_from_one(shares: int) -> None:
    with pytest.raises(ValueError, match="shares"):
        in_shares(BEIJING, BEIJING.plan("allowance"), shares)


def test_the_explanation_names_the_shares_only_where_they_multiply() -> None:
    assert shares_note(BEIJING, BEIJING.plan("accident"), 2) == "按 2 份计（每份的金额、比例和限额乘以 2）；"
    assert shares_note(BEIJING, BEIJING.plan("accident"), 1) == ""
    assert shares_note(BEIJING, BEIJING.plan("jingka"), 3) == ""
