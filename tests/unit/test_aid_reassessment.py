"""Re-assessment of a member's period (issue 4 §5) and table tests from every rulebook in the repository's rulebooks/."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.claims.domain.aid import assess_banded, banded_aid, banded_total
from services.claims.domain.reassess import (
    BandedStay,
    FixedStay,
    reassess_banded,
    reassess_banded_fast,
    reassess_fixed,
)
from services.claims.domain.routing import final_level, review_path
from shared.rulebook import BandedPlan, FixedPlan, Rulebook, SecondAidPlan, load_rulebook
from tests.conftest import RULEBOOKS

D = Decimal
ZERO = D("0.00")


def rulebook(name: str) -> Rulebook:
    return load_rulebook((RULEBOOKS / f"{name}.yaml").read_text(encoding="utf-8"))


def banded(name: str) -> BandedPlan:
    plan = rulebook(name).plan("inpatient")
    assert isinstance(plan, BandedPlan)
    return plan


YUNNAN_18, YUNNAN_19, YUNCHENG, NEIMENGGU = (banded(n) for n in ("yunnan-18", "yunnan-19", "yuncheng-2024",
                                                                  "neimenggu-2019"))
# 2022: C50 32,000 is seed 004 森工 "2022年，职工张女士因患乳房恶性肿瘤…32000元"; 2019 has no sum for it.
XINKANG = rulebook("neimenggu-2022").plan("xinkang")
assert isinstance(XINKANG, FixedPlan)


# --- every rulebook loads and computes as its comments say --------------------------------------------------
@pytest.mark.parametrize("path", sorted(RULEBOOKS.glob("*.yaml")), ids=lambda p: Path(p).stem)
def test_every_rulebook_loads_and_each_plan_and_tier_computes(path: Path) -> None:
    book = load_rulebook(path.read_text(encoding="utf-8"))
    for plan in book.plans:
        if isinstance(plan, BandedPlan):
            assert banded_total(plan, ZERO) == ZERO
            assert banded_total(plan, D("1000000.00")) > 0
    assert final_level(book.approval, D("999999999.00")) == book.approval.tiers[-1].level


@pytest.mark.parametrize(
    ("plan", "base", "aid"),
    [
        # yunnan-19: "as the 18th period" (第七条): 30% over 800 to 10,000 with a 100 minimum, 70%, 100%.
        (YUNNAN_19, "800.00", "0.00"),
        (YUNNAN_19, "800.01", "100.00"),
        (YUNNAN_19, "1133.34", "100.00"),  # 0.3 * 333.34 = 100.002 -> F = 100.00
        (YUNNAN_19, "1133.35", "100.01"),  # 100.005 half up
        (YUNNAN_19, "10000.00", "2760.00"),
        (YUNNAN_19, "100000.00", "65760.00"),
        (YUNNAN_19, "500000.00", "465760.00"),
        (YUNNAN_19, "600000.00", "465760.00"),  # nothing above 500,000
        # yuncheng-2024: "2000元（含）~5000元 25%，5000元（含）以上 30%" on the whole base; 30,000 a period.
        (YUNCHENG, "1999.99", "0.00"),
        (YUNCHENG, "2000.00", "500.00"),
        (YUNCHENG, "5000.00", "1500.00"),
        (YUNCHENG, "10000.00", "3000.00"),
        (YUNCHENG, "100000.00", "30000.00"),
        (YUNCHENG, "105000.00", "30000.00"),  # 31,500 capped
        # neimenggu-2019 (assumed bands): 40% over 1,000 to 50,000, 60% above; 250,000 a period (seed 004).
        (NEIMENGGU, "1000.00", "0.00"),
        (NEIMENGGU, "1000.01", "0.00"),  # 0.004 rounds to 0.00: no minimum in this rulebook
        (NEIMENGGU, "1000.02", "0.01"),
        (NEIMENGGU, "50000.00", "19600.00"),
        (NEIMENGGU, "60000.00", "25600.00"),
        (NEIMENGGU, "900000.00", "250000.00"),  # 529,600 capped at 250,000 a period
    ],
)
def test_banded_rulebooks_table(plan: BandedPlan, base: str, aid: str) -> None:
    assert assess_banded(plan, ZERO, D(base)).aid_amount == D(aid)
    assert banded_aid(plan, ZERO, D(base)) == D(aid)


@pytest.mark.parametrize(
    ("name", "aid", "path"),
    [
        ("yunnan-19", "3000.00", ["agency_point"]),
        ("yunnan-19", "3000.01", ["agency_point", "office"]),
        ("yunnan-19", "10000.01", ["agency_point", "office", "centre"]),
        ("yuncheng-2024", "0.00", ["agency_point", "centre"]),  # approved_by: centre
        ("yuncheng-2024", "0.01", ["agency_point", "centre"]),
        ("neimenggu-2019", "0.00", ["agency_point", "centre"]),  # approved_by: centre
        ("neimenggu-2019", "5000.00", ["agency_point", "centre"]),
    ],
)
def test_approval_tiers_of_every_rulebook(name: str, aid: str, path: list[str]) -> None:
    assert review_path(rulebook(name).approval, D(aid)) == path


def test_yunnan_19_second_aid_is_decided_by_the_centre() -> None:
    plan = rulebook("yunnan-19").plan("second-aid")
    assert isinstance(plan, SecondAidPlan) and plan.decided_by == "centre"


# --- re-assessment ------------------------------------------------------------------------------------------
def test_an_earlier_stay_leaving_the_period_moves_the_start_point_to_the_next() -> None:
    # Two stays 500 and 1000: 0 and F(1500) - F(500) = 210.00. Without the first, 1000 alone earns the
    # 100.00 minimum: 110.00 to recover.
    [later] = reassess_banded(YUNNAN_18, [BandedStay("b", D("1000.00"), D("210.00"))])
    assert (later.new_aid, later.difference) == (D("100.00"), D("-110.00"))


def test_nothing_changes_when_nothing_left() -> None:
    stays = [BandedStay("a", D("11000.00"), D("3460.00")), BandedStay("b", D("5000.00"), D("3500.00"))]
    assert [r.difference for r in reassess_banded(YUNNAN_18, stays)] == [ZERO, ZERO]


def test_a_period_cap_freed_by_a_revoked_stay_tops_up_the_next() -> None:
    # Yuncheng: the first stay took the whole 30,000; the second got 0. Revoke the first: the second earns F.
    [second] = reassess_banded(YUNCHENG, [BandedStay("b", D("10000.00"), ZERO)])
    assert second.difference == D("3000.00")  # 30% of the whole 10,000 (whole-base reading)


def test_the_womens_plan_pays_the_next_listed_stay_once_the_paid_one_is_gone() -> None:
    stays = [FixedStay("b", "C53.9", "female", ZERO), FixedStay("c", "C50.1", "female", ZERO)]
    assert [r.new_aid for r in reassess_fixed(XINKANG, stays)] == [D("22000.00"), ZERO]


PROPERTY = settings(max_examples=250, deadline=None)
fen = st.integers(min_value=0, max_value=30_000_000).map(lambda f: Decimal(f).scaleb(-2))
plans = st.sampled_from([YUNNAN_18, YUNCHENG, NEIMENGGU])


def capped(plan: BandedPlan, amount: Decimal) -> Decimal:
    for cap in (plan.max_aid_per_period, plan.max_aid_per_member):
        if cap is not None:
            amount = min(amount, cap)
    return amount


@PROPERTY
@given(plan=plans, bases=st.lists(fen, min_size=1, max_size=8), data=st.data())
def test_after_any_removals_through_reassessment_the_period_pays_f_of_the_remaining_bases(
        plan: BandedPlan, bases: list[Decimal], data: st.DataObject) -> None:
    # Submission: each stay assessed against the live ones before it.
    aids: dict[str, Decimal] = {}
    prior_base = prior_aid = ZERO
    for i, base in enumerate(bases):
        a = assess_banded(plan, prior_base, base, prior_aid, prior_aid)
        aids[str(i)], prior_base, prior_aid = a.aid_amount, a.cumulative_base, a.period_total
    paid = sum(aids.values(), ZERO)  # what the member received, plus every adjustment below
    live = [str(i) for i in range(len(bases))]
    removals = data.draw(st.lists(st.sampled_from(live), unique=True, max_size=len(live)))
    for removed in removals:
        paid -= aids.pop(removed)  # its own aid is recovered or never paid
        live.remove(removed)
        for result in reassess_banded(plan, [BandedStay(c, bases[int(c)], aids[c]) for c in live]):
            assert result.new_aid >= 0
            paid += result.difference
            aids[result.claim_id] = result.new_aid
    remaining = sum((bases[int(c)] for c in live), ZERO)
    assert paid == sum(aids.values(), ZERO) == capped(plan, banded_total(plan, remaining))
    assert all(aid >= 0 for aid in aids.values())


@PROPERTY
@given(plan=plans, bases=st.lists(fen, min_size=1, max_size=8))
def test_the_fast_path_pays_what_the_explained_path_pays(plan: BandedPlan, bases: list[Decimal]) -> None:
    explained = reassess_banded(plan, [BandedStay(str(i), b, ZERO) for i, b in enumerate(bases)])
    assert [r.new_aid for r in explained] == reassess_banded_fast(plan, bases)


@PROPERTY
@given(stays=st.lists(st.tuples(st.sampled_from(["C50.9", "C53", "D25.1", "I21", "C509"]),
                                st.sampled_from(["female", "male", "2"])), max_size=6))
def test_the_womens_plan_pays_at_most_one_benefit_a_period(stays: list[tuple[str, str]]) -> None:
    results = reassess_fixed(XINKANG, [FixedStay(str(i), icd, sex, ZERO) for i, (icd, sex) in enumerate(stays)])
    assert sum(1 for r in results if r.new_aid > 0) <= 1
    assert all(ZERO <= r.new_aid <= D("32000.00") for r in results)
