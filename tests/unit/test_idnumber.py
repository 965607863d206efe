"""Resident ID numbers as every service reads them (shared/idnumber.py, GB 11643): the region code may be any
code of the historical GB/T 2260 table, 15-digit numbers become 18-digit ones, and what is refused is refused
for a reason a person can act on."""

from __future__ import annotations

import random
from collections import Counter
from datetime import date

import pytest
from stdnum.cn import ric

from deploy.people import KUNMING, MINORITY, REGIONS, legacy_certno, person
from shared import idnumber
from shared.idnumber import Problem, check_digit, lookup_form, parse, region_name, upgrade_15

TODAY = date(2026, 11, 23)


def number(region: str, born: str, seq: str = "001") -> str:
    body = f"{region}{born}{seq}"
    return body + check_digit(body)


def test_a_worker_born_in_1962_with_the_wuhua_district_code_of_1983_is_accepted() -> None:
    # 530102 五华区 came into use in 1983; the number carries the code of the place where it was issued.
    certno = number("530102", "19620315")
    assert not ric.is_valid(certno)  # python-stdnum's birth-place-in-birth-year rule refuses it (its issue #442)
    read = parse(certno, today=TODAY)
    assert read.number == certno and read.region_known and read.birth_date == date(1962, 3, 15)
    assert read.converted_from is None and read.sex == "male"


@pytest.mark.parametrize(("region", "born"), [
    ("530103", "19580601"),  # 盘龙区, from 1983
    ("530111", "19550228"),  # 官渡区, from 1983
    ("530112", "19600101"),  # 西山区, from 1983
    ("530113", "19500704"),  # 东川区, from 1998
    ("530114", "19651231"),  # 呈贡区, from 2011
    ("530181", "19700815"),  # 安宁市, from 1995
    ("532301", "19521010"),  # 楚雄市
    ("530123", "19590505"),  # 安宁县, until 1995: an old code is as good as a new one
    ("110103", "19800229"),  # 北京 崇文区, until 2010 (and a 29 February)
])
def test_old_workers_of_district_codes_younger_than_themselves_are_accepted(region: str, born: str) -> None:
    read = parse(number(region, born, "024"), today=TODAY)
    assert read.region_known and read.sex == "female"


def test_a_lower_case_x_is_read_as_x() -> None:
    seq = next(f"{s:03d}" for s in range(1000) if check_digit(f"53010319580601{s:03d}") == "X")
    certno = number("530103", "19580601", seq)
    assert certno.endswith("X")
    assert parse(f" {certno.lower()} ", today=TODAY).number == certno


def test_a_15_digit_number_is_read_as_its_18_digit_form() -> None:
    old = "530102620315001"  # region, 62-03-15, sequence 001
    read = parse(old, today=TODAY)
    assert read.number == "53010219620315001" + ric.calc_check_digit("530102196203150010")
    assert read.converted_from == old and read.birth_date == date(1962, 3, 15) and read.region_known
    assert upgrade_15(old) == read.number == lookup_form(f" {old} ")


def test_an_unknown_region_code_is_not_a_refusal_but_is_marked() -> None:
    read = parse(number("530199", "19700101"), today=TODAY)
    assert not read.region_known and region_name("530199") is None
    assert not parse(number("990101", "19700101"), today=TODAY).region_known


GOOD = number("530102", "19620315")


@pytest.mark.parametrize(("certno", "problem"), [
    (GOOD[:-1] + ("1" if GOOD[-1] != "1" else "2"), Problem.CHECK_DIGIT),
    (GOOD[:8] + GOOD[9] + GOOD[8] + GOOD[10:], Problem.CHECK_DIGIT),  # two digits swapped
    (number("530102", "20261124"), Problem.BIRTH_DATE),  # tomorrow
    (number("530102", "18991231"), Problem.BIRTH_DATE),
    (number("530102", "19620230"), Problem.BIRTH_DATE),  # 30 February
    (number("530102", "19621301"), Problem.BIRTH_DATE),
    ("530102621301001", Problem.BIRTH_DATE),  # 15 digits, month 13
    ("53010219620315001", Problem.FORMAT),  # 17 digits
    ("5301021962031500A1", Problem.FORMAT),
    ("5.30102E+17", Problem.FORMAT),
    ("", Problem.FORMAT),
])
def test_a_wrong_check_digit_an_impossible_birth_date_or_a_wrong_shape_is_refused(certno: str,
                                                                                  problem: Problem) -> None:
    with pytest.raises(idnumber.IdNumberError) as caught:
        parse(certno, today=TODAY)
    assert caught.value.problem == problem and "身份证号码" in caught.value.message


def test_born_today_is_accepted() -> None:
    assert parse(number("530102", "20261123"), today=TODAY).birth_date == TODAY


def test_the_check_digit_is_gb_11643s_on_any_number() -> None:
    rng = random.Random(11643)
    for _ in range(20_000):
        body = "".join(str(rng.randrange(10)) for _ in range(17))
        assert check_digit(body) == ric.calc_check_digit(body + "0")


def test_region_names_come_from_the_historical_table() -> None:
    assert region_name("530102") == "云南省昆明市五华区"
    assert region_name("530126") == "云南省昆明市石林彝族自治县"  # renamed from 路南 in 1998: the latest name
    assert region_name("110105") == "北京市朝阳区"


def test_lookup_form_never_raises() -> None:
    assert lookup_form("abc") == "ABC" and lookup_form("") == ""


# --- the project's test people look like a real unit's staff ----------------------------------------------
def test_test_people_are_born_1950_to_2008_across_many_districts_with_sexes_matching_their_numbers() -> None:
    rng = random.Random(2026)
    staff = [person(rng, "retired" if i % 4 == 0 else "in_service") for i in range(2000)]
    read = [parse(str(p["certno"]), today=TODAY) for p in staff]
    years = [r.birth_date.year for r in read]
    assert min(years) <= 1952 and max(years) >= 2006 and all(1950 <= y <= 2008 for y in years)
    assert all(r.region_known for r in read)
    regions = Counter(r.number[:6] for r in read)
    assert len(regions) >= 25 and set(KUNMING) <= set(regions) and set(regions) <= set(REGIONS)
    assert sum(1 for r in read if r.number.startswith("5301") and r.birth_date.year < 1983) > 100
    assert all(r.sex == p["sex"] for r, p in zip(read, staff, strict=True))
    names = "".join(str(p["name"]) for p in staff)
    assert all(ch in names for ch in "𠮷䶮堃喆赟·") and any(p["name"] in MINORITY for p in staff)


def test_legacy_test_numbers_are_15_digits_and_convert() -> None:
    rng = random.Random(15)
    for _ in range(200):
        old = legacy_certno(rng, sex="female")
        read = parse(old, today=TODAY)
        assert len(old) == 15 and read.converted_from == old and read.sex == "female" and read.region_known
