"""Beijing's roster rules as the roster check applies them (seed 002, issue #16): a man on a women's plan and
shares above the rulebook's limit are refused by row among the roster's other problems; a file's 份数 column;
Beijing's 70% and 100% below 30 staff."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import date, timedelta

from deploy.people import certno, luhn_account
from services.enrollment.domain.roster_files import parse_csv
from services.enrollment.domain.roster_rules import RosterMember, Staff, check_roster
from shared.rulebook import load_rulebook
from tests.conftest import RULEBOOKS

BEIJING = load_rulebook((RULEBOOKS / "beijing-2014.yaml").read_bytes())
IN_WINDOW = date(2014, 2, 10)
ROOMY = Staff(total=40, in_service=40, basic_insured_in_service=40)


def worker(seed: int, sex: str, plans: tuple[str, ...] | None, name: str = "司马䶮", shares: int = 1,
           line: int | None = None) -> RosterMember:
    rng = random.Random(seed)
    return RosterMember(name=name, certno=certno(rng, region="110102", sex=sex, born=date(1970, 1, 1) + timedelta(days=97 * seed)),
                        phone="13901012345", sex=sex, member_type="in_service", bank_account=luhn_account(rng),
                        bank_name="中国工商银行北京西城支行", insurance=("basic_medical",), plans=plans, line=line,
                        shares=shares)


def roster(n: int, *extra: RosterMember) -> list[RosterMember]:
    return [*extra, *(worker(100 + i, "female" if i % 2 else "male", ("inpatient",)) for i in range(n))]


def test_a_man_on_the_womens_plan_is_refused_by_row_among_the_rows_other_problems() -> None:
    bad_phone = replace(worker(1, "male", ("inpatient", "women"), name="欧阳𠮷"), phone="1390101")
    members = roster(30, worker(2, "female", ("inpatient", "women")), bad_phone)
    found = check_roster(BEIJING, ROOMY, members, today=IN_WINDOW, enrolled_elsewhere=set())
    # Row 2 (index 1): its phone, then its plan, in the order of the rows.
    assert [(e["loc"], e["code"]) for e in found.errors] == [
        (["members", 1, "phone"], "invalid_phone"), (["members", 1, "plans"], "plan_sex_mismatch")]
    assert found.errors[1]["msg"] == "第2条：在职女职工特殊疾病互助保障计划仅限女性参加，此人性别为男性。"


def test_shares_above_the_rulebooks_three_are_refused_and_three_are_taken() -> None:
    members = roster(30, worker(3, "male", ("inpatient",), shares=3), worker(4, "female", ("critical",), shares=4))
    found = check_roster(BEIJING, ROOMY, members, today=IN_WINDOW, enrolled_elsewhere=set())
    assert [(e["loc"], e["code"], e.get("limit")) for e in found.errors] == [
        (["members", 1, "shares"], "shares_above_limit", 3)]
    assert found.errors[0]["msg"] == "第2条：每人最多 3 份，此行为 4 份。"


def test_a_file_gives_shares_in_its_fen_shu_column_blank_is_one_and_a_word_is_refused_by_line() -> None:
    rows = [worker(5, "male", None), worker(6, "female", None), worker(7, "male", None)]
    head = "姓名,身份证号码,手机号码,性别,人员类别,银行账号,开户银行,参保险种,互助项目,份数\n"
    lines = [f"{m.name},{m.certno},{m.phone},{'男' if m.sex == 'male' else '女'},在职,{m.bank_account},{m.bank_name},"
             f"基本医疗保险,inpatient;allowance,{shares}\n" for m, shares in zip(rows, ["2", "", "两份"], strict=True)]
    parsed = parse_csv((head + "".join(lines)).encode())
    assert [(e["loc"], e["code"], e["line"]) for e in parsed.errors] == [(["members", 2, "shares"], "invalid_shares", 4)]
    assert [m.shares for m in parsed.members] == [2, 1]
    parsed = parse_csv((head + "".join(lines[:2])).encode())
    found = check_roster(BEIJING, ROOMY, [*parsed.members, *roster(28)], today=IN_WINDOW, enrolled_elsewhere=set())
    assert found.errors == []


def test_beijing_takes_70_percent_of_a_unit_of_30_and_everyone_of_a_unit_of_29() -> None:
    # seed 002 "同一单位参保职工不得少于在职职工总数的70%，职工低于30人的单位要100%参保".
    def codes(n: int, staff: int) -> list[str]:
        found = check_roster(BEIJING, Staff(total=staff, in_service=staff, basic_insured_in_service=staff),
                             roster(n), today=IN_WINDOW, enrolled_elsewhere=set())
        return [e["code"] for e in found.errors]

    assert codes(21, 30) == []  # 21 / 30 = 70%
    assert codes(20, 30) == ["participation_ratio_too_low"]  # 69%: "其他职工一个也参加不了"
    assert codes(29, 29) == []
    assert codes(28, 29) == ["participation_ratio_too_low"]  # 28 of 29 below 30 staff: not 100%


def test_the_womens_plan_goes_by_the_id_numbers_sex_and_the_row_is_told() -> None:
    man_as_woman = replace(worker(8, "male", ("inpatient", "women")), sex="female")
    found = check_roster(BEIJING, ROOMY, roster(30, man_as_woman), today=IN_WINDOW, enrolled_elsewhere=set())
    assert [(e["loc"], e["code"]) for e in found.errors] == [(["members", 0, "plans"], "plan_sex_mismatch")]
    assert [(w["loc"], w["code"]) for w in found.warnings if w["code"] == "sex_differs_from_certno"] == [
        (["members", 0, "sex"], "sex_differs_from_certno")]


def test_a_scheme_of_one_share_refuses_a_second() -> None:
    yunnan = load_rulebook((RULEBOOKS / "yunnan-18.yaml").read_bytes())  # 第四条: one share per person
    members = [replace(worker(9, "female", None), insurance=("basic_medical", "critical_illness_supplement"),
                       shares=2)]
    found = check_roster(yunnan, Staff(total=1, in_service=1, basic_insured_in_service=1), members,
                         today=date(2022, 1, 10), enrolled_elsewhere=set())
    assert [(e["loc"], e["code"], e["limit"]) for e in found.errors] == [(["members", 0, "shares"], "shares_above_limit", 1)]
