"""The roster checks as columns (roster_columns, polars) decide exactly as the row check (issue #15): on odd rows
(15-digit numbers, X and x check digits, full-width digits, spaces, Excel's 1.23457E+17 and leading apostrophes,
future and impossible birth dates, unknown regions, duplicates in two forms, passbook accounts) the findings
are the same, problem for problem, in the same order."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import date, timedelta

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deploy.people import certno, luhn_account
from services.enrollment.domain import roster_columns
from services.enrollment.domain.roster_rules import (
    RosterMember,
    Staff,
    check_roster,
    headcount_day,
    luhn_ok,
    retirement_day,
)
from shared.idnumber import check_digit
from shared.rulebook import Rulebook, load_rulebook
from tests.conftest import RULEBOOKS

RULEBOOK_DAYS = {  # each with something the others lack: retiree renewal, retirement ages, a women's plan
    "yunnan-19.yaml": date(2023, 1, 10),
    "yuncheng-2024.yaml": date(2024, 3, 1),
    "beijing-2014.yaml": date(2014, 1, 10),
}
RULEBOOKS_LOADED = {name: load_rulebook((RULEBOOKS / name).read_bytes()) for name in RULEBOOK_DAYS}
FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")


def _odd_forms(good: str, others: list[str], today: date) -> list[str]:
    """Every odd way a number reaches the checks, made from a sound 18-digit ``good``."""
    body = good[:17]
    forms = [
        good[:6] + good[8:17] if good[6:8] == "19" else good,  # its 15-digit form (a born-19xx number)
        body + ("X" if good[17] != "X" else "0"),  # a wrong check digit, or X where it is not
        body + check_digit(body).lower(),
        good.translate(FULL_WIDTH),
        f" {good} ",
        f"{good[0]}.{good[1:6]}E+17",
        f"'{good}",
        good[:17],
        good + "\n",
        "",
        f"99{good[2:]}",  # a wrong check digit and an unknown region
    ]
    for day in ("19900230", "18991231", f"{today + timedelta(days=1):%Y%m%d}", f"{today:%Y%m%d}", "20001301",
                "19000101", "00000000"):  # impossible, too early, future, today: the check digit made right
        dated = f"{good[:6]}{day}{good[14:17]}"
        forms.append(dated + check_digit(dated))
    unknown = f"990000{good[6:17]}"  # a region no table knows
    forms.append(unknown + check_digit(unknown))
    for other in others[-2:]:  # the same person again, as given or in the 15-digit form
        forms.append(other)
        if len(other) == 18 and other[6:8] == "19":
            forms.append(other[:6] + other[8:17])
    return forms


def _odd_certno(rng: random.Random, good: str, others: list[str], today: date) -> str:
    return rng.choice(_odd_forms(good, others, today))


def _odd_phone(rng: random.Random) -> str:
    phone = "1" + rng.choice("3589") + "".join(str(rng.randrange(10)) for _ in range(9))
    return rng.choice([phone, phone, phone, phone[:10], phone + "\n", phone.translate(FULL_WIDTH), "12" + phone[2:],
                       f" {phone}", "1.38123E+10"])


def _odd_account(rng: random.Random) -> str:
    account = luhn_account(rng)
    return rng.choice([account, account, account, account[:-1] + str((int(account[-1]) + 1) % 10),
                       account.translate(FULL_WIDTH), account[:9], "1" * 31, f"{account} ", "0" * 10,
                       "6.22202E+18", "'" + account])


def _roster(seed: int, size: int, today: date) -> tuple[list[RosterMember], set[str], set[str] | None]:
    rng = random.Random(seed)
    rows: list[RosterMember] = []
    numbers: list[str] = []
    for _ in range(size):
        sex = rng.choice(["male", "female"])
        # some born just either side of 运城's retirement days, most in working age
        born = rng.choice([date(1960, 1, 1) + timedelta(days=rng.randrange(6000)),
                           date(1970, 1, 1) + timedelta(days=rng.randrange(11000))])
        good = certno(rng, sex=rng.choice([sex, sex, sex, "male", "female"]), born=born)
        number = _odd_certno(rng, good, numbers, today) if rng.random() < 0.5 else good
        numbers.append(number)
        rows.append(RosterMember(
            name=rng.choice(["张伟", "𠈌莉", "  王芳 ", "", " ", "·", "李" * 101, "\x1c", "Ａ"]) if rng.random() < 0.3
            else "赵敏",
            certno=number, phone=_odd_phone(rng) if rng.random() < 0.3 else "13812345678",
            sex=sex, member_type=rng.choice(["in_service", "in_service", "in_service", "retired", "other"]),
            bank_account=_odd_account(rng) if rng.random() < 0.3 else luhn_account(rng),
            bank_name=rng.choice(["中国工商银行昆明五华支行", "", "  ", "工" * 101]) if rng.random() < 0.2
            else "中国农业银行",
            insurance=rng.choice([("basic_medical", "critical_illness_supplement"), ("basic_medical",), ()]),
            plans=rng.choice([None, None, None, ("mystery",), ("women_special",), ()]),
        ))
    chosen = [n.strip() for n in numbers if n.strip()]
    enrolled = set(rng.sample(chosen, min(len(chosen), rng.randrange(3))))
    previous = None if rng.random() < 0.3 else set(rng.sample(chosen, min(len(chosen), rng.randrange(size + 1))))
    return rows, enrolled, previous


def _both(rulebook: Rulebook, today: date, rows: list[RosterMember], enrolled: set[str],
          previous: set[str] | None) -> tuple[object, object]:
    staff = Staff(total=len(rows) or 1, in_service=len(rows) or 1, basic_insured_in_service=len(rows) or 1)
    if rulebook.enrolment.headcount_as_of is not None:
        staff = replace(staff, as_of=headcount_day(rulebook.enrolment.headcount_as_of, today))
    by_columns = check_roster(rulebook, staff, rows, today=today, enrolled_elsewhere=enrolled,
                              previous_members=previous)
    by_rows = check_roster(rulebook, staff, rows, today=today, enrolled_elsewhere=enrolled,
                           previous_members=previous, by_rows=True)
    return by_columns, by_rows


@pytest.mark.parametrize("name", sorted(RULEBOOK_DAYS))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), size=st.integers(0, 60))
def test_columns_and_rows_find_the_same_problems(name: str, seed: int, size: int) -> None:
    rulebook, today = RULEBOOKS_LOADED[name], RULEBOOK_DAYS[name]
    rows, enrolled, previous = _roster(seed, size, today)
    by_columns, by_rows = _both(rulebook, today, rows, enrolled, previous)
    assert by_columns == by_rows


@pytest.mark.parametrize("name", sorted(RULEBOOK_DAYS))
def test_a_plain_roster_is_decided_by_the_columns_alone(name: str) -> None:
    """The common case: nothing to say about any row, and the columns say so without a row check."""
    rulebook, today = RULEBOOKS_LOADED[name], RULEBOOK_DAYS[name]
    rng = random.Random(15)
    rows = [RosterMember(name="李娜", certno=certno(rng, region="530102", sex="female", born=date(1985, 5, 5)
                                                    + timedelta(days=i)),
                         phone="13912345678", sex="female", member_type="in_service", bank_account=luhn_account(rng),
                         bank_name="中国建设银行", insurance=("basic_medical", "critical_illness_supplement"))
            for i in range(200)]
    previous = {r.certno for r in rows}
    unsound = roster_columns.rows_to_check(
        rows, today=today, allowed_types={"in_service", "retired"}, enrolled_elsewhere=set(),
        retirees_need=previous, renewal_rule=True, sex_matters=True, born_by=None,
        required_insurance={"basic_medical"}, plan_codes=set())
    assert unsound == []
    by_columns, by_rows = _both(rulebook, today, rows, set(), previous)
    assert by_columns == by_rows


@given(st.text(alphabet="0123456789０１２ x-", max_size=32))
def test_the_luhn_column_agrees_with_luhn_ok(account: str) -> None:
    column = roster_columns.luhn_ok(pl.Series([account], dtype=pl.String)).fill_null(False)[0]
    plain = account.isascii() and account.isdigit() and len(account) <= 30
    assert (column and plain) == (luhn_ok(account) and plain)


def test_the_retirement_cut_off_is_the_last_birth_day_already_retired() -> None:
    ages = RULEBOOKS_LOADED["yuncheng-2024.yaml"].enrolment.retirement_age
    assert ages is not None
    from services.enrollment.domain.roster_rules import _latest_retired_birth

    day = date(2024, 3, 1)
    for sex in ("male", "female"):
        rule = getattr(ages, sex)
        cut = _latest_retired_birth(rule, ages.reform_from, day)
        assert retirement_day(cut, rule, ages.reform_from) <= day
        assert retirement_day(cut + timedelta(days=1), rule, ages.reform_from) > day


@pytest.mark.parametrize("name", sorted(RULEBOOK_DAYS))
def test_every_odd_form_of_a_number_phone_and_account_is_decided_as_the_rows_decide(name: str) -> None:
    """Each odd form at least once, next to plain rows (hypothesis mixes them at random above)."""
    rulebook, today = RULEBOOKS_LOADED[name], RULEBOOK_DAYS[name]
    rng = random.Random(1515)
    rows: list[RosterMember] = []
    numbers: list[str] = []
    for index in range(40):
        good = certno(rng, sex="female", born=date(1958, 1, 1) + timedelta(days=rng.randrange(12000)))
        for form_index, number in enumerate(_odd_forms(good, numbers, today)):
            numbers.append(number)
            kind = (index + form_index) % 3
            rows.append(RosterMember(
                name="赵敏", certno=number, phone=_odd_phone(rng) if kind else "13812345678", sex="female",
                member_type=rng.choice(["in_service", "retired"]),
                bank_account=_odd_account(rng) if kind == 2 else luhn_account(rng), bank_name="中国农业银行",
                insurance=("basic_medical", "critical_illness_supplement")))
    previous = {n for n in numbers[::2]}
    by_columns, by_rows = _both(rulebook, today, rows, set(numbers[5:6]), previous)
    assert by_columns == by_rows
    assert {e["code"] for e in by_rows.errors} >= {"invalid_certno", "duplicate_person", "invalid_phone",
                                                   "invalid_bank_account"}
    assert {w["code"] for w in by_rows.warnings} >= {"certno_converted_from_15", "certno_region_unknown",
                                                     "bank_account_luhn"}


def test_full_width_digits_and_a_trailing_line_break_are_refused_not_stored() -> None:
    """An input method's ０-９ pass Python's \\d and str.isdigit(): a number, phone or account typed so would have
    been stored as typed (never matched again), and a full-width account failed the upload with a KeyError."""
    rulebook, today = RULEBOOKS_LOADED["yunnan-19.yaml"], RULEBOOK_DAYS["yunnan-19.yaml"]
    rng = random.Random(3)
    good = certno(rng, region="530102", sex="male", born=date(1980, 2, 2))
    plain = RosterMember(name="杨洋", certno=good, phone="13987654321", sex="male", member_type="in_service",
                         bank_account=luhn_account(rng), bank_name="富滇银行", insurance=("basic_medical",
                                                                                    "critical_illness_supplement"))
    rows = [replace(plain, certno=good.translate(FULL_WIDTH)),
            replace(plain, certno=certno(rng), phone="13987654321\n"),
            replace(plain, certno=certno(rng), bank_account=plain.bank_account.translate(FULL_WIDTH))]
    by_columns, by_rows = _both(rulebook, today, rows, set(), set())
    assert by_columns == by_rows
    found = [(e["loc"], e["code"]) for e in by_rows.errors if e["loc"][0] == "members"]  # type: ignore[index]
    assert found == [(["members", 0, "certno"], "invalid_certno"), (["members", 1, "phone"], "invalid_phone"),
                     (["members", 2, "bank_account"], "invalid_bank_account")]
