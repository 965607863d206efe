"""Beijing's roster rules (seed 002) as pure functions: plans by sex, shares per member, the unit's payers.

Not yet wired into the enrolment API (issue #16 leaves that to the intake work); these test the rules alone.
"""

from __future__ import annotations

import random
from decimal import Decimal

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from deploy.people import certno, luhn_account
from services.enrollment.domain.roster_rules import (
    RosterMember,
    check_payers,
    check_plan_rows,
    member_fee,
    split_fee,
)
from shared.rulebook import fee_for, load_rulebook
from tests.conftest import RULEBOOKS

BEIJING = load_rulebook((RULEBOOKS / "beijing-2014.yaml").read_bytes())
YUNNAN = load_rulebook((RULEBOOKS / "yunnan-18.yaml").read_bytes())
NEIMENGGU = load_rulebook((RULEBOOKS / "neimenggu-2019.yaml").read_bytes())
D = Decimal


def person(seed: int, sex: str, plans: tuple[str, ...] | None, name: str = "王𠮷", line: int | None = None
           ) -> RosterMember:
    rng = random.Random(seed)
    return RosterMember(name=name, certno=certno(rng, sex=sex), phone="13912345678", sex=sex,
                        member_type="in_service", bank_account=luhn_account(rng), bank_name="中国工商银行北京西城支行",
                        insurance=("basic_medical",), plans=plans, line=line)


# --- a man cannot join a women's plan ---------------------------------------------------------------------------


def test_a_man_on_a_womens_plan_is_refused_by_row_and_a_woman_is_not() -> None:
    # seed 002 "在职女职工特殊疾病互助保障计划": women only (`eligible: {sex: female}` in beijing-2014.yaml).
    roster = [
        person(1, "female", ("inpatient", "women")),
        person(2, "male", ("inpatient", "women"), name="欧阳·䶮", line=3),
        person(3, "male", ("inpatient", "allowance")),
    ]
    found = check_plan_rows(BEIJING, roster)
    assert [(e["loc"], e["code"], e["plan"]) for e in found.errors] == [
        (["members", 1, "plans"], "plan_sex_mismatch", "women")]
    assert found.errors[0]["msg"] == "第3行：在职女职工特殊疾病互助保障计划仅限女性参加，此人性别为男性。"
    assert found.errors[0]["line"] == 3


def test_inner_mongolias_xinkang_takes_women_only_too() -> None:
    # seed 004 "女性馨康互助保障 … 女职工"; a row without plans joins only the plans without their own fee.
    found = check_plan_rows(NEIMENGGU, [person(4, "male", ("inpatient", "xinkang")), person(5, "male", None)])
    assert [e["loc"] for e in found.errors] == [["members", 0, "plans"]]


def test_a_plan_the_rulebook_lacks_is_left_to_the_unknown_plan_check() -> None:
    assert check_plan_rows(BEIJING, [person(6, "male", ("lottery",))]).errors == []


# --- shares per member -----------------------------------------------------------------------------------------


def test_shares_run_from_one_to_the_rulebooks_limit() -> None:
    # seed 002 "多买几份"; beijing-2014.yaml shares_per_member: 3 (ASSUMED there).
    roster = [person(i, "female", ("critical",)) for i in range(5)]
    found = check_plan_rows(BEIJING, roster, shares=[1, 3, 4, 0, True])  # type: ignore[list-item]
    assert [(e["loc"], e["code"]) for e in found.errors] == [
        (["members", 2, "shares"], "shares_above_limit"),
        (["members", 3, "shares"], "invalid_shares"),
        (["members", 4, "shares"], "invalid_shares"),
    ]
    assert "最多 3 份" in str(found.errors[0]["msg"])


def test_one_share_is_all_yunnan_allows() -> None:
    found = check_plan_rows(YUNNAN, [person(7, "male", None)], shares=[2])
    assert [e["code"] for e in found.errors] == ["shares_above_limit"]
    with pytest.raises(ValueError):
        check_plan_rows(YUNNAN, [person(7, "male", None)], shares=[1, 1])


def test_a_members_fee_is_the_fee_of_one_share_times_the_shares() -> None:
    # "三年90元" a share (seed 002): three shares cost 270.
    per_share = fee_for(BEIJING, renewing=False, plan_code="critical")
    assert member_fee(per_share, 3) == D("270.00")
    assert member_fee(per_share) == D("90.00")
    for bad in (0, -1, True):
        with pytest.raises(ValueError):
            member_fee(per_share, bad)


# --- the unit's payers -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "payers",
    [
        {"employer": D("1")},  # "由职工所在单位行政 … 统一为职工全额交纳"
        {"union": D("1.00")},  # "… 或工会统一为职工全额交纳"
        {"employer": D("0.5"), "union": D("0.2"), "member": D("0.3")},  # "行政、工会、职工个人各出资一部分"
        {"member": D("1")},  # "或者职工个人出资交纳"
    ],
)
def test_the_ways_of_paying_seed_002_names_are_accepted(payers: dict[str, Decimal]) -> None:
    assert check_payers(BEIJING, payers).errors == []


@pytest.mark.parametrize(
    ("payers", "problems"),
    [
        ({"employer": D("0.5"), "union": D("0.4")}, [(["payers"], "payer_shares_not_one")]),
        ({"employer": D("0.7"), "landlord": D("0.3")}, [(["payers", "landlord"], "payer_not_allowed")]),
        ({"employer": D("1.2"), "member": D("-0.2")},
         [(["payers", "employer"], "invalid_payer_share"), (["payers", "member"], "invalid_payer_share")]),
        ({"employer": D("0"), "member": D("1")}, [(["payers", "employer"], "invalid_payer_share")]),
        ({"employer": 0.5, "member": D("0.5")}, [(["payers", "employer"], "invalid_payer_share")]),
        ({}, [(["payers"], "payers_empty")]),
    ],
)
def test_bad_payer_choices_are_refused_naming_the_payer(payers: dict[str, object],
                                                       problems: list[tuple[list[str], str]]) -> None:
    found = check_payers(BEIJING, payers)  # type: ignore[arg-type]
    assert [(e["loc"], e["code"]) for e in found.errors] == problems


def test_a_rulebook_without_payers_allowed_takes_no_choice_of_payers() -> None:
    assert [e["code"] for e in check_payers(YUNNAN, {"member": D("1")}).errors] == ["payers_not_allowed"]
    assert check_payers(YUNNAN, None).errors == []


def test_the_fee_is_split_by_cumulative_shares_so_the_fen_add_up() -> None:
    payers = {"employer": D("0.3333"), "union": D("0.3333"), "member": D("0.3334")}
    # F(0.3333) = 6.666 -> 6.67; F(0.6666) = 13.332 -> 13.33; F(1) = 20.00.
    assert split_fee(BEIJING, D("20.00"), payers) == {"employer": D("6.67"), "union": D("6.66"), "member": D("6.67")}
    assert split_fee(BEIJING, D("90.00"), {"member": D("1")}) == {"member": D("90.00")}
    with pytest.raises(ValueError):
        split_fee(BEIJING, D("90.00"), {"member": D("0.5")})


shares_of_100 = st.lists(st.integers(1, 100), min_size=1, max_size=3).filter(lambda xs: sum(xs) <= 100)


@settings(max_examples=200, deadline=None)
@given(cuts=shares_of_100, fee_fen=st.integers(0, 1_000_000))
def test_a_split_always_adds_up_to_the_fee_in_fen_and_never_goes_negative(cuts: list[int], fee_fen: int) -> None:
    names = ["employer", "union", "member"][: len(cuts)]
    cuts = [*cuts[:-1], 100 - sum(cuts[:-1])]
    assume(cuts[-1] > 0)
    payers = {n: D(c).scaleb(-2) for n, c in zip(names, cuts, strict=True)}
    fee = D(fee_fen).scaleb(-2)
    parts = split_fee(BEIJING, fee, payers)
    assert sum(parts.values(), D("0.00")) == fee
    assert all(p >= 0 and p.as_tuple().exponent == -2 for p in parts.values())
