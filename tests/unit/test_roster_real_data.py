"""Rosters as a real unit sends them on its first day: old workers' ID numbers of district codes younger than
they are, first-generation 15-digit numbers, an unknown region code; every row named as its sender sees it
(第N条 for JSON, 第N行 = the spreadsheet line for files, with a BOM, blank lines, GB18030 and XLSX); and fees
that count by their bank date (seed 003 第五条)."""

from __future__ import annotations

import io
import random
from dataclasses import replace
from datetime import date

import pytest
from openpyxl import Workbook

from deploy.people import legacy_certno, luhn_account
from services.enrollment.domain.fee_payments import cover_start, payment_date_problem
from services.enrollment.domain.roster_files import parse_csv, parse_xlsx
from services.enrollment.domain.roster_rules import Findings, RosterMember, Staff, check_roster
from shared.idnumber import check_digit, upgrade_15
from shared.rulebook import Rulebook, RulebookError, load_rulebook, parse_rulebook
from tests.conftest import RULEBOOKS

YUNNAN = load_rulebook((RULEBOOKS / "yunnan-18.yaml").read_bytes())  # enrolment 2021-12-20 .. 2022-02-25
IN_WINDOW = date(2022, 1, 10)
BOTH = ("basic_medical", "critical_illness_supplement")
HEADINGS = ["姓名", "身份证号码", "手机号码", "性别", "人员类别", "银行账号", "开户银行", "参保险种"]


def certno(region: str, born: str, seq: int) -> str:
    body = f"{region}{born}{seq:03d}"
    return body + check_digit(body)


def worker(name: str, number: str, rng: random.Random, member_type: str = "in_service") -> RosterMember:
    sex = "male" if int(number[-2] if len(number) == 18 else number[-1]) % 2 else "female"
    return RosterMember(name=name, certno=number, phone=f"139{rng.randrange(10**8):08d}", sex=sex,
                        member_type=member_type, bank_account=luhn_account(rng), bank_name="富滇银行昆明分行",
                        insurance=BOTH)


def old_workers() -> list[RosterMember]:
    rng = random.Random(1962)
    return [worker("𠮷祥", certno("530102", "19620315", 11), rng),  # 五华区 (1983-)
            worker("刘䶮", certno("530103", "19580601", 22), rng),  # 盘龙区 (1983-)
            worker("王堃", certno("530111", "19550228", 35), rng, "retired"),  # 官渡区 (1983-)
            worker("张喆", certno("530113", "19640704", 46), rng),  # 东川区 (1998-)
            worker("李赟", certno("530114", "19661231", 57), rng),  # 呈贡区 (2011-)
            worker("阿依古丽·买买提", certno("530181", "19700815", 68), rng)]  # 安宁市 (1995-)


def check(members: list[RosterMember], enrolled_elsewhere: set[str] | None = None) -> Findings:
    n = sum(1 for m in members if m.member_type == "in_service")
    return check_roster(YUNNAN, Staff(total=n, in_service=n, basic_insured_in_service=n), members,
                        today=IN_WINDOW, enrolled_elsewhere=enrolled_elsewhere or set())


# --- ID numbers in a roster -------------------------------------------------------------------------------
def test_a_roster_of_old_workers_from_kunmings_districts_is_accepted_without_a_word() -> None:
    found = check(old_workers())
    assert found.errors == [] and found.warnings == []


def test_a_15_digit_number_is_accepted_with_a_warning_naming_its_row() -> None:
    rng = random.Random(15)
    old = legacy_certno(rng, region="530102", sex="female")
    roster = [*old_workers(), worker("段玥", old, rng)]
    found = check(roster)
    assert found.errors == []
    [warning] = found.warnings
    assert warning["loc"] == ["members", 6, "certno"] and warning["code"] == "certno_converted_from_15"
    assert str(warning["msg"]).startswith("第7条：") and old in str(warning["msg"]) and upgrade_15(old) in str(warning["msg"])
    assert "line" not in warning


def test_a_15_digit_number_and_its_18_digit_form_are_one_person() -> None:
    rng = random.Random(16)
    old = legacy_certno(rng)
    roster = [worker("甲", upgrade_15(old), rng), worker("乙", old, rng)]
    assert [(e["loc"], e["code"]) for e in check(roster).errors] == [(["members", 1, "certno"], "duplicate_person")]
    assert [(e["code"]) for e in check([roster[1]], enrolled_elsewhere={upgrade_15(old)}).errors] == [
        "already_enrolled"]


def test_an_unknown_region_code_is_a_warning_for_that_row() -> None:
    rng = random.Random(17)
    roster = [*old_workers(), worker("普文", certno("530199", "19750101", 13), rng)]
    found = check(roster)
    assert found.errors == []
    assert [(w["loc"], w["code"]) for w in found.warnings] == [(["members", 6, "certno"], "certno_region_unknown")]
    assert str(found.warnings[0]["msg"]).startswith("第7条：") and "530199" in str(found.warnings[0]["msg"])


@pytest.mark.parametrize(("born", "reason"), [("19620230", "birth_date"), ("20220111", "birth_date"),
                                              ("18991231", "birth_date")])
def test_an_impossible_future_or_19th_century_birth_date_is_refused(born: str, reason: str) -> None:
    rng = random.Random(18)
    roster = [*old_workers(), worker("赵强", certno("530102", born, 13), rng)]
    [error] = check(roster).errors  # IN_WINDOW is 2022-01-10: born 2022-01-11 is in the future
    assert (error["loc"], error["code"], error["reason"]) == (["members", 6, "certno"], "invalid_certno", reason)
    assert str(error["msg"]).startswith("第7条：")


def test_a_wrong_check_digit_is_refused_naming_the_reason() -> None:
    roster = old_workers()
    good = roster[0].certno
    roster[0] = replace(roster[0], certno=good[:-1] + ("1" if good[-1] != "1" else "2"))
    [error] = check(roster).errors
    assert (error["loc"], error["code"], error["reason"]) == (["members", 0, "certno"], "invalid_certno", "check_digit")
    assert str(error["msg"]).startswith("第1条：") and "校验位" in str(error["msg"])


def test_a_file_row_is_named_by_its_spreadsheet_line() -> None:
    rng = random.Random(19)
    old = legacy_certno(rng)
    roster = [replace(m, line=i + 3) for i, m in enumerate(old_workers())]  # a title line, then the headings
    roster.append(replace(roster[0], name="重复", line=12))
    roster.append(replace(worker("段玥", old, rng), line=14))
    found = check(roster)
    assert [(e["loc"], e["line"], e["code"]) for e in found.errors] == [
        (["members", 6, "certno"], 12, "duplicate_person")]
    assert found.errors[0]["msg"] == "第12行：与第3行是同一人（每人限一份）。"
    assert [(w["loc"], w["line"], w["code"]) for w in found.warnings] == [
        (["members", 7, "certno"], 14, "certno_converted_from_15")]
    assert str(found.warnings[0]["msg"]).startswith("第14行：")


# --- files: line numbers as Excel shows them ----------------------------------------------------------
def rows_of(members: list[RosterMember]) -> list[list[str]]:
    return [[m.name, m.certno, m.phone, "男" if m.sex == "male" else "女",
             "在职" if m.member_type == "in_service" else "退休", m.bank_account, m.bank_name,
             "基本医疗保险;大病补充医疗保险"] for m in members]


def csv_file(lines: list[list[str]], encoding: str, bom: bool = False) -> bytes:
    text = "".join(",".join(cells) + "\r\n" for cells in lines)
    return (b"\xef\xbb\xbf" if bom else b"") + text.encode(encoding)


def xlsx_file(lines: list[list[str]]) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    for cells in lines:
        sheet.append(cells or [None])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def a_unit_file() -> tuple[list[list[str]], str]:
    """A title line, a blank line, the headings on line 3, the six old workers on lines 4-9, a blank line 10,
    then line 11: a worker with a 15-digit number and a passbook account failing Luhn, line 12: the first
    worker again, line 13: a bad sex. Returns the lines and the 15-digit number."""
    rng = random.Random(20)
    old = legacy_certno(rng, region="530112", sex="male")
    data = rows_of(old_workers())
    late = rows_of([worker("欧阳喆", old, rng)])[0]
    late[5] = late[5][:-1] + str((int(late[5][-1]) + 1) % 10)
    again = [*data[0]]
    again[0] = "𠮷祥（重复）"
    wrong_sex = rows_of([worker("岩温·玉香", certno("532801", "19790101", 24), rng)])[0]
    wrong_sex[3] = "未知"
    return [["某机械厂工会第十八期参互名单"], [], HEADINGS, *data, [], late, again, wrong_sex], old


@pytest.mark.parametrize("kind", ["utf-8 with BOM", "gb18030", "xlsx"])
def test_every_error_and_warning_of_a_file_names_the_line_excel_shows(kind: str) -> None:
    lines, old = a_unit_file()
    parse_only = lines[:-1]  # without the bad sex, the rule checks run on the members read
    for content, expect_parse_error in ((lines, True), (parse_only, False)):
        if kind == "xlsx":
            parsed = parse_xlsx(xlsx_file(content))
        else:
            parsed = parse_csv(csv_file(content, "utf-8" if kind.startswith("utf-8") else "gb18030",
                                        bom=kind.startswith("utf-8")))
        if expect_parse_error:
            assert [(e["loc"], e["line"], e["code"]) for e in parsed.errors] == [
                (["members", 8, "sex"], 13, "invalid_sex")]
            assert parsed.errors[0]["msg"].startswith("第13行：")
            continue
        assert parsed.errors == []
        assert [m.line for m in parsed.members] == [4, 5, 6, 7, 8, 9, 11, 12]
        assert parsed.members[0].name == "𠮷祥" and parsed.members[5].name == "阿依古丽·买买提"
        found = check(parsed.members)
        assert [(e["loc"], e["line"], e["code"], e["msg"]) for e in found.errors] == [
            (["members", 7, "certno"], 12, "duplicate_person", "第12行：与第4行是同一人（每人限一份）。")]
        assert [(w["loc"], w["line"], w["code"], str(w["msg"])[:5]) for w in found.warnings] == [
            (["members", 6, "certno"], 11, "certno_converted_from_15", "第11行："),
            (["members", 6, "bank_account"], 11, "bank_account_luhn", "第11行：")]
        assert old in str(found.warnings[0]["msg"])


# --- fees by their bank date (第五条) -----------------------------------------------------------------
@pytest.mark.parametrize(("paid_at", "code"), [
    (date(2021, 12, 19), "payment_before_window"),
    (date(2021, 12, 20), None),
    (date(2022, 2, 25), None),
    (date(2022, 2, 26), "payment_window_closed"),
    (date(2023, 1, 5), "payment_window_closed"),
    (date(2023, 6, 2), "payment_date_in_future"),
    (date(1899, 12, 31), "payment_date_invalid"),
])
def test_a_payment_counts_only_with_a_bank_date_within_the_enrolment_window(paid_at: date, code: str | None) -> None:
    problem = payment_date_problem(YUNNAN, paid_at, today=date(2023, 6, 1))
    assert (problem.code if problem else None) == code
    if problem is not None:
        assert str(paid_at) in problem.msg


def with_cover_starts(mode: str | None) -> Rulebook:
    document = YUNNAN.to_document()
    if mode is None:
        document["enrolment"].pop("cover_starts")
    else:
        document["enrolment"]["cover_starts"] = mode
    return parse_rulebook(document)


def test_cover_starts_on_the_coverage_windows_first_day_unless_the_rulebook_says_otherwise() -> None:
    # seed 003 第三条: cover runs from 1 January; 第五条 takes fees until 25 February, and a fee paid then
    # covers the whole period.
    default = with_cover_starts(None)
    assert default.enrolment.cover_starts == "coverage_start"
    assert cover_start(default, date(2022, 2, 20)) == date(2022, 1, 1)
    by_payment = with_cover_starts("payment_date")
    assert cover_start(by_payment, date(2022, 2, 20)) == date(2022, 2, 20)
    assert cover_start(by_payment, date(2021, 12, 28)) == date(2022, 1, 1)
    day_after = with_cover_starts("day_after_payment")
    assert cover_start(day_after, date(2022, 2, 20)) == date(2022, 2, 21)


def test_an_unknown_cover_start_is_a_rulebook_error_naming_the_key() -> None:
    with pytest.raises(RulebookError) as caught:
        with_cover_starts("whenever")
    assert [e["loc"] for e in caught.value.errors] == [["enrolment", "cover_starts"]]
