"""Every enrolment rule, checked against every rulebook in the repository's rulebooks/ with the rulebook's own numbers
(so a new rulebook is covered the day it is added): window, member types, required insurance, participation
ratio and small-unit rule with the rulebook's denominator, the retiree rule, and the fees."""

from __future__ import annotations

import random
from datetime import timedelta
from decimal import ROUND_CEILING, Decimal
from pathlib import Path

import pytest

from deploy.people import person
from services.enrollment.domain.roster_rules import RosterMember, Staff, check_roster
from services.enrollment.rosters import fee_of
from shared.rulebook import Rulebook, load_rulebook
from tests.conftest import RULEBOOKS

FILES = sorted(RULEBOOKS.glob("*.yaml"))
INSURANCE = ("basic_medical", "critical_illness_supplement")


def rulebook_of(path: Path) -> Rulebook:
    return load_rulebook(path.read_bytes())


def member(rng: random.Random, member_type: str = "in_service", insurance: tuple[str, ...] = INSURANCE) -> RosterMember:
    p = person(rng, member_type)
    return RosterMember(name=str(p["name"]), certno=str(p["certno"]), phone=str(p["phone"]), sex=str(p["sex"]),
                        member_type=member_type, bank_account=str(p["bank_account"]), bank_name=str(p["bank_name"]),
                        insurance=insurance)


def staff_for(rb: Rulebook, total: int, in_service: int) -> Staff:
    return Staff(total=total, in_service=in_service, basic_insured_in_service=in_service)


def codes(rb: Rulebook, members: list[RosterMember], staff: Staff, *, day_offset: int = 0,
          previous: set[str] | None = None) -> set[str]:
    today = rb.windows.enrolment.from_ + timedelta(days=day_offset)
    found = check_roster(rb, staff, members, today=today, enrolled_elsewhere=set(), previous_members=previous)
    return {str(e["code"]) for e in found.errors}


@pytest.fixture(params=FILES, ids=[f.stem for f in FILES])
def rb(request: pytest.FixtureRequest) -> Rulebook:
    return rulebook_of(request.param)


def test_the_window_opens_and_closes_on_the_rulebooks_dates(rb: Rulebook) -> None:
    rng = random.Random(1)
    members = [member(rng)]
    window = rb.windows.enrolment
    last_day = (window.to - window.from_).days
    assert "outside_enrolment_window" not in codes(rb, members, staff_for(rb, 1, 1))
    assert "outside_enrolment_window" not in codes(rb, members, staff_for(rb, 1, 1), day_offset=last_day)
    assert "outside_enrolment_window" in codes(rb, members, staff_for(rb, 1, 1), day_offset=-1)
    assert "outside_enrolment_window" in codes(rb, members, staff_for(rb, 1, 1), day_offset=last_day + 1)


def test_only_the_member_types_the_rulebook_names_may_join(rb: Rulebook) -> None:
    rng = random.Random(2)
    for member_type in ("in_service", "retired"):
        found = codes(rb, [member(rng), member(rng, member_type)], staff_for(rb, 1, 1),
                      previous={"*"} if rb.enrolment.retirees_must_renew else None)
        allowed = member_type in rb.enrolment.member_types
        assert ("member_type_not_allowed" in found) is not allowed, member_type


def test_the_insurance_the_rulebook_requires_is_required(rb: Rulebook) -> None:
    rng = random.Random(3)
    found = codes(rb, [member(rng, insurance=())], staff_for(rb, 1, 1))
    assert ("required_insurance_missing" in found) is bool(rb.enrolment.requires_insurance)
    assert "required_insurance_missing" not in codes(rb, [member(rng)], staff_for(rb, 1, 1))


def test_participation_at_the_minimum_passes_and_one_below_fails(rb: Rulebook) -> None:
    rule = rb.enrolment.participation
    rng = random.Random(4)
    if rule.min_ratio == 0:  # the source sets no ratio (seed 004): one member of a large unit may join
        assert "participation_ratio_too_low" not in codes(rb, [member(rng)], staff_for(rb, 500, 500))
        return
    staff_count = rule.small_unit.max_staff + 40  # a unit above the small-unit size
    needed = int((rule.min_ratio * staff_count).to_integral_value(rounding=ROUND_CEILING))
    at_minimum = [member(rng) for _ in range(needed)]
    assert "participation_ratio_too_low" not in codes(rb, at_minimum, staff_for(rb, staff_count, staff_count))
    assert "participation_ratio_too_low" in codes(rb, at_minimum[:-1], staff_for(rb, staff_count, staff_count))


def test_a_small_unit_must_join_whole(rb: Rulebook) -> None:
    small = rb.enrolment.participation.small_unit
    rng = random.Random(5)
    if small.max_staff == 0:  # no small-unit rule in the source (seed 004): a small unit may join in part
        assert "participation_ratio_too_low" not in codes(rb, [member(rng)], staff_for(rb, 5, 5))
        return
    staff = staff_for(rb, small.max_staff, small.max_staff)
    everyone = [member(rng) for _ in range(small.max_staff)]
    assert "participation_ratio_too_low" not in codes(rb, everyone, staff)
    assert "participation_ratio_too_low" in codes(rb, everyone[:-1], staff)


def test_the_ratio_uses_the_rulebooks_denominator(rb: Rulebook) -> None:
    rule = rb.enrolment.participation
    rng = random.Random(6)
    big = rule.small_unit.max_staff + 100
    joined = [member(rng) for _ in range(int(rule.min_ratio * big) + 1)]
    # Few of the in-service staff hold basic insurance: only a rulebook counting the insured passes.
    staff = Staff(total=big * 2, in_service=big * 2, basic_insured_in_service=big)
    passes = "participation_ratio_too_low" not in codes(rb, joined, staff)
    assert passes is (rule.denominator == "basic_insured_in_service" or rule.min_ratio == 0)


WITH_RETIREES = [f for f in FILES if "retired" in rulebook_of(f).enrolment.member_types]


@pytest.mark.parametrize("path", WITH_RETIREES, ids=[f.stem for f in WITH_RETIREES])
def test_retirees_who_skipped_the_previous_period_are_refused_only_where_the_rulebook_says(path: Path) -> None:
    rb = rulebook_of(path)
    rng = random.Random(7)
    in_service = [member(rng) for _ in range(3)]
    retiree = member(rng, "retired")
    found = codes(rb, [*in_service, retiree], staff_for(rb, 3, 3), previous={m.certno for m in in_service})
    assert ("retiree_not_renewing" in found) is rb.enrolment.retirees_must_renew
    renewed = codes(rb, [*in_service, retiree], staff_for(rb, 3, 3), previous={retiree.certno})
    assert "retiree_not_renewing" not in renewed


def test_fees_are_the_rulebooks_renewal_and_new_fees(rb: Rulebook) -> None:
    default = [p.code for p in rb.plans_without_own_fee()]
    assert fee_of(rb, True, default, default) == rb.enrolment.fee.renewal
    assert fee_of(rb, False, default, default) == rb.enrolment.fee.new
    for plan in rb.plans:
        own = getattr(plan, "fee", None)
        if own is not None:  # an optional plan with its own fee adds it (女性馨康)
            assert fee_of(rb, False, [*default, plan.code], default) == rb.enrolment.fee.new + own.new
    assert all(isinstance(x, Decimal) for x in (rb.enrolment.fee.new, rb.enrolment.fee.renewal))
