"""Roster rules (seed 003 云南 第一条/第五条, seed 001 运城) as pure functions: no database, no HTTP."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import date, timedelta

import pytest

from deploy.people import certno, luhn_account
from services.enrollment.domain.roster_rules import RosterMember, Staff, check_roster, headcount_day, luhn_ok
from shared.rulebook import Rulebook, load_rulebook
from tests.conftest import RULEBOOKS

YUNNAN = load_rulebook((RULEBOOKS / "yunnan-18.yaml").read_bytes())
YUNCHENG = load_rulebook((RULEBOOKS / "yuncheng-2024.yaml").read_bytes())
IN_WINDOW = {"yn-18": date(2022, 1, 10), "yc-2024": date(2024, 3, 1)}
BOTH_INSURANCES = ("basic_medical", "critical_illness_supplement")


def members(n: int, member_type: str = "in_service", seed: int = 7) -> list[RosterMember]:
    rng = random.Random(seed)
    out: dict[str, RosterMember] = {}
    while len(out) < n:
        # In service: born 1970-2000, short of 运城's legal retirement age (tests/unit/test_r16_*.py test that rule).
        born = date(1970, 1, 1) + timedelta(days=rng.randrange(11_000)) if member_type == "in_service" else None
        c = certno(rng, born=born)
        out[c] = RosterMember(name="张伟", certno=c, phone="13812345678", sex="male", member_type=member_type,
                              bank_account=luhn_account(rng), bank_name="中国工商银行昆明五华支行",
                              insurance=BOTH_INSURANCES)
    return list(out.values())


def check(rulebook: Rulebook, staff: Staff, roster: list[RosterMember], *, today: date | None = None,
          enrolled_elsewhere: set[str] | None = None) -> list[dict[str, object]]:
    day = today or IN_WINDOW[rulebook.code]
    if rulebook.enrolment.headcount_as_of is not None and staff.as_of is None:  # 运城: the count of 31 May
        staff = replace(staff, as_of=headcount_day(rulebook.enrolment.headcount_as_of, day))
    found = check_roster(rulebook, staff, roster, today=day,
                         enrolled_elsewhere=enrolled_elsewhere or set())
    return found.errors


def codes(errors: list[dict[str, object]]) -> list[object]:
    return [e["code"] for e in errors]


# --- Luhn ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("digits", ["79927398713", "4111111111111111", "5500000000000004", "6011000990139424"])
def test_luhn_accepts_numbers_with_a_correct_check_digit(digits: str) -> None:
    assert luhn_ok(digits)


def test_luhn_accepts_every_generated_bank_card_number() -> None:
    rng = random.Random(1)
    assert all(luhn_ok(luhn_account(rng)) for _ in range(200))


@pytest.mark.parametrize("digits", ["79927398710", "4111111111111112", "", "6222 0202 0011", "62220202001x"])
def test_luhn_refuses_a_wrong_check_digit_or_anything_but_digits(digits: str) -> None:
    assert not luhn_ok(digits)


def test_luhn_catches_any_single_mistyped_digit() -> None:
    account = luhn_account(random.Random(3))
    for i in range(len(account)):
        for d in "0123456789":
            if d != account[i]:
                assert not luhn_ok(account[:i] + d + account[i + 1:])


# --- participation (第一条) -----------------------------------------------------------------------------
def test_a_small_unit_must_enrol_every_insured_staff_member() -> None:
    # 10 staff (<= max_staff 10): 9 of 10 is 90%, well above 60%, yet refused; 10 of 10 passes.
    staff = Staff(total=10, in_service=10, basic_insured_in_service=10)
    assert codes(check(YUNNAN, staff, members(9))) == ["participation_ratio_too_low"]
    assert check(YUNNAN, staff, members(10)) == []


def test_a_unit_just_above_the_small_unit_size_needs_only_the_normal_ratio() -> None:
    staff = Staff(total=11, in_service=10, basic_insured_in_service=10)
    assert check(YUNNAN, staff, members(6)) == []  # 6/10 = 60%


def test_a_ratio_exactly_at_the_minimum_passes_and_one_below_fails() -> None:
    staff = Staff(total=20, in_service=20, basic_insured_in_service=20)
    assert check(YUNNAN, staff, members(12)) == []  # 12/20 = 0.60 exactly
    errors = check(YUNNAN, staff, members(11))
    assert codes(errors) == ["participation_ratio_too_low"] and errors[0]["loc"] == ["staff"]


def test_yunnan_counts_the_ratio_against_staff_with_basic_insurance() -> None:
    # 12 of 20 insured is 60% (passes) though only 40% of the 30 in service.
    assert check(YUNNAN, Staff(total=30, in_service=30, basic_insured_in_service=20), members(12)) == []
    # 12 of 30 insured is 40% (refused) though 60% of the 20 in service.
    refused = check(YUNNAN, Staff(total=30, in_service=20, basic_insured_in_service=30), members(12))
    assert codes(refused) == ["participation_ratio_too_low"]


def test_yuncheng_counts_the_ratio_against_all_staff_in_service() -> None:
    # 运城: 80% of the in-service staff; units of more than 50 staff.
    assert check(YUNCHENG, Staff(total=60, in_service=50, basic_insured_in_service=100), members(40)) == []
    assert codes(check(YUNCHENG, Staff(total=60, in_service=50, basic_insured_in_service=40), members(39))) == [
        "participation_ratio_too_low"]
    # Enough of the insured staff, not enough of those in service: refused.
    assert codes(check(YUNCHENG, Staff(total=120, in_service=100, basic_insured_in_service=40), members(40))) == [
        "participation_ratio_too_low"]


def test_yuncheng_small_units_of_up_to_fifty_staff_need_everyone() -> None:
    assert codes(check(YUNCHENG, Staff(total=50, in_service=50, basic_insured_in_service=50), members(49))) == [
        "participation_ratio_too_low"]
    assert check(YUNCHENG, Staff(total=50, in_service=50, basic_insured_in_service=50), members(50)) == []


def test_retirees_do_not_count_towards_the_ratio() -> None:
    roster = members(5) + members(5, "retired", seed=8)
    errors = check(YUNNAN, Staff(total=20, in_service=10, basic_insured_in_service=10), roster)
    assert codes(errors) == ["participation_ratio_too_low"]  # 5 in service of 10 = 50%


def test_a_unit_without_insured_staff_is_told_to_fix_its_staff_counts() -> None:
    errors = check(YUNNAN, Staff(total=5, in_service=5, basic_insured_in_service=0), members(3))
    assert errors == [{"loc": ["staff", "basic_insured_in_service"], "msg": errors[0]["msg"],
                       "code": "invalid_staff_count"}]


# --- per-row checks -------------------------------------------------------------------------------------
def test_every_problem_is_listed_with_its_row() -> None:
    ok = members(8)
    bad_certno = ok[1].certno[:-1] + ("1" if ok[1].certno[-1] != "1" else "2")
    roster = [
        ok[0],
        replace(ok[1], certno=bad_certno),
        replace(ok[2], certno=ok[0].certno, name="李芳"),
        replace(ok[3], name="  "),
        replace(ok[4], phone="0871-6512345"),
        replace(ok[5], insurance=("basic_medical",)),
        replace(ok[6], plans=("inpatient", "dental")),
        replace(ok[7], bank_account="12345"),
    ]
    errors = check(YUNNAN, Staff(total=8, in_service=8, basic_insured_in_service=8), roster)
    assert [(e["loc"], e["code"]) for e in errors] == [
        (["members", 1, "certno"], "invalid_certno"),
        (["members", 2, "certno"], "duplicate_person"),
        (["members", 3, "name"], "invalid_name"),
        (["members", 4, "phone"], "invalid_phone"),
        (["members", 5, "insurance"], "required_insurance_missing"),
        (["members", 6, "plans"], "unknown_plan"),
        (["members", 7, "bank_account"], "invalid_bank_account"),
    ]
    assert str(errors[1]["msg"]).startswith("第3条：与第1条是同一人")
    assert "critical_illness_supplement" in str(errors[4]["msg"])


def test_yuncheng_refuses_retirees_and_yunnan_accepts_them() -> None:
    roster = members(10) + members(1, "retired", seed=9)
    staff = Staff(total=10, in_service=10, basic_insured_in_service=10)
    errors = check(YUNCHENG, staff, roster)
    assert [(e["loc"], e["code"]) for e in errors] == [(["members", 10, "member_type"], "member_type_not_allowed")]
    assert check(YUNNAN, staff, roster) == []


def test_yuncheng_requires_no_insurance_and_yunnan_requires_both() -> None:
    roster = [replace(m, insurance=()) for m in members(3)]
    staff = Staff(total=3, in_service=3, basic_insured_in_service=3)
    assert check(YUNCHENG, staff, roster) == []
    assert codes(check(YUNNAN, staff, roster)) == ["required_insurance_missing"] * 3


def test_a_person_already_holding_a_share_this_period_is_refused() -> None:
    roster = members(3)
    errors = check(YUNNAN, Staff(total=3, in_service=3, basic_insured_in_service=3), roster,
                   enrolled_elsewhere={roster[2].certno})
    assert [(e["loc"], e["code"]) for e in errors] == [(["members", 2, "certno"], "already_enrolled")]


def test_a_lower_case_x_check_digit_is_the_same_id_number() -> None:
    rng = random.Random(11)
    c = certno(rng)
    while not c.endswith("X"):
        c = certno(rng)
    [m] = members(1)
    staff = Staff(total=1, in_service=1, basic_insured_in_service=1)
    assert check(YUNNAN, staff, [replace(m, certno=c.lower())]) == []
    both = [replace(m, certno=c), replace(m, certno=c.lower())]
    assert codes(check(YUNNAN, Staff(total=2, in_service=2, basic_insured_in_service=2), both)) == [
        "duplicate_person"]


def test_a_bank_account_failing_luhn_is_only_a_warning() -> None:
    [m] = members(1)
    account = m.bank_account[:-1] + str((int(m.bank_account[-1]) + 1) % 10)
    found = check_roster(YUNNAN, Staff(total=1, in_service=1, basic_insured_in_service=1),
                         [replace(m, bank_account=account)], today=IN_WINDOW["yn-18"], enrolled_elsewhere=set())
    assert found.errors == []
    assert [(w["loc"], w["code"]) for w in found.warnings] == [(["members", 0, "bank_account"], "bank_account_luhn")]


# --- window (第五条) and empty rosters ------------------------------------------------------------------
@pytest.mark.parametrize(("today", "late"), [
    (date(2021, 12, 19), True), (date(2021, 12, 20), False), (date(2022, 2, 25), False), (date(2022, 2, 26), True)])
def test_the_enrolment_window_includes_both_its_ends(today: date, late: bool) -> None:
    errors = check(YUNNAN, Staff(total=1, in_service=1, basic_insured_in_service=1), members(1), today=today)
    assert codes(errors) == (["outside_enrolment_window"] if late else [])
    if late:
        assert errors[0]["loc"] == ["window"]


def test_an_empty_roster_is_refused() -> None:
    errors = check(YUNNAN, Staff(total=5, in_service=5, basic_insured_in_service=5), [])
    assert "empty_roster" in codes(errors)
