"""运城 (seed 001) roster rules: staff counts of 31 May (`headcount_as_of`), and no one past the legal retirement
age ("在职职工（不包括达到法定退休年龄的人员）"), the age computed from the ID number's birth date and sex under
the 2025 gradual reform (全国人大常委会《关于实施渐进式延迟法定退休年龄的决定》 and its table)."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import date

import pytest

from deploy.people import certno, luhn_account
from services.enrollment.domain.roster_rules import RosterMember, Staff, check_roster, headcount_day, retirement_day
from shared.rulebook import RetirementAge, load_rulebook
from tests.conftest import RULEBOOKS

YUNCHENG = load_rulebook((RULEBOOKS / "yuncheng-2024.yaml").read_bytes())
AGES = YUNCHENG.enrolment.retirement_age
assert AGES is not None
REFORM = date(2025, 1, 1)
MEN = AGES.male
WOMEN_WORKERS = RetirementAge(age=50, raised_to=55, months_per_step=2)


@pytest.mark.parametrize(("born", "rule", "retires"), [
    (date(1964, 12, 15), MEN, date(2024, 12, 15)),      # 60 before the reform
    (date(1965, 1, 20), MEN, date(2025, 2, 20)),        # 1965年1月 -> 60岁1个月
    (date(1965, 4, 30), MEN, date(2025, 5, 30)),        # 1965年4月 -> 60岁1个月 (30 May: May has its 30th)
    (date(1965, 5, 1), MEN, date(2025, 7, 1)),          # 1965年5月 -> 60岁2个月
    (date(1976, 8, 31), MEN, date(2039, 7, 31)),        # 1976年8月 -> 62岁11个月 (31 July)
    (date(1976, 9, 3), MEN, date(2039, 9, 3)),          # 1976年9月及以后 -> 63岁
    (date(1990, 2, 28), MEN, date(2053, 2, 28)),
    (date(1970, 1, 8), AGES.female, date(2025, 2, 8)),  # women cadres: 1970年1月 -> 55岁1个月
    (date(1981, 9, 8), AGES.female, date(2039, 9, 8)),  # 1981年9月及以后 -> 58岁
    (date(1975, 1, 31), WOMEN_WORKERS, date(2025, 2, 28)),  # women workers: 1975年1月 -> 50岁1个月 (no 31 Feb)
    (date(1975, 3, 2), WOMEN_WORKERS, date(2025, 5, 2)),    # 1975年3月 -> 50岁2个月
    (date(1984, 11, 2), WOMEN_WORKERS, date(2039, 11, 2)),  # 1984年11月及以后 -> 55岁
])
def test_the_legal_retirement_day_follows_the_2025_reform_table(born: date, rule: RetirementAge, retires: date) -> None:
    assert retirement_day(born, rule, REFORM) == retires


def test_without_the_reform_the_age_is_the_old_one() -> None:
    assert retirement_day(date(1970, 6, 1), MEN, None) == date(2030, 6, 1)


def worker(seed: int, born: date, sex: str, name: str = "程军刚") -> RosterMember:
    rng = random.Random(seed)
    return RosterMember(name=name, certno=certno(rng, region="140802", sex=sex, born=born), phone="13935912345",
                        sex=sex, member_type="in_service", bank_account=luhn_account(rng),
                        bank_name="中国工商银行运城盐湖支行", insurance=())


def staff(n: int, as_of: date | None = date(2023, 5, 31)) -> Staff:
    return Staff(total=n, in_service=n, basic_insured_in_service=n, as_of=as_of)


def test_an_in_service_worker_past_the_legal_age_is_refused_by_row_naming_the_day() -> None:
    roster = [worker(1, date(1985, 3, 2), "male"), worker(2, date(1963, 11, 4), "male", name="段䶮"),
              worker(3, date(1968, 10, 9), "female", name="薛红梅"), worker(4, date(1969, 4, 9), "female"),
              worker(5, date(1964, 5, 20), "male")]
    found = check_roster(YUNCHENG, staff(5), roster, today=date(2024, 3, 1), enrolled_elsewhere=set())
    # Cover starts 2024-01-01, the roster comes on 2024-03-01: the later day counts. Row 5 turns 60 in May: in
    # service when it joins.
    assert [(e["loc"], e["code"], e["retires_on"]) for e in found.errors] == [
        (["members", 1, "certno"], "past_retirement_age", "2023-11-04"),
        (["members", 2, "certno"], "past_retirement_age", "2023-10-09")]
    assert found.errors[0]["msg"] == "第2条：此人（1963年11月出生，男性）已于 2023-11-04 达到法定退休年龄，不能作为在职职工参加。"


def test_the_sex_is_the_id_numbers_not_the_rows() -> None:
    # A woman's number marked 男 on the roster: 58 at 2038 would not refuse her; 55 (women) does.
    woman = worker(6, date(1968, 12, 1), "female")
    found = check_roster(YUNCHENG, staff(1), [replace(woman, sex="male")],
                         today=date(2024, 3, 1), enrolled_elsewhere=set())
    assert [e["code"] for e in found.errors] == ["past_retirement_age"]


def test_staff_counts_are_those_of_the_latest_31_may() -> None:
    assert headcount_day("05-31", date(2024, 3, 1)) == date(2023, 5, 31)
    assert headcount_day("05-31", date(2024, 5, 31)) == date(2024, 5, 31)
    assert headcount_day("02-29", date(2023, 3, 1)) == date(2023, 2, 28)
    roster = [worker(7, date(1990, 1, 1), "male")]
    found = check_roster(YUNCHENG, staff(1, None), roster, today=date(2024, 3, 1), enrolled_elsewhere=set())
    assert [(e["loc"], e["code"], e["expected"]) for e in found.errors] == [
        (["staff", "as_of"], "headcount_date_missing", "2023-05-31")]
    found = check_roster(YUNCHENG, staff(1, date(2024, 2, 29)), roster, today=date(2024, 3, 1), enrolled_elsewhere=set())
    assert [e["code"] for e in found.errors] == ["headcount_date_wrong"]
    assert "2023-05-31" in str(found.errors[0]["msg"])
    assert check_roster(YUNCHENG, staff(1), roster, today=date(2024, 3, 1), enrolled_elsewhere=set()).errors == []
