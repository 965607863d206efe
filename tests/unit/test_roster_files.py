"""Roster files (CSV or XLSX from Excel/WPS) read into RosterMember rows: docs/API.md "Enrollment (8001)", rosters."""

from __future__ import annotations

import io
import random
from collections.abc import Sequence
from typing import Any

import pytest
from openpyxl import Workbook

from deploy.people import person
from services.enrollment.domain.roster_files import ParsedRoster, parse_csv, parse_roster_file, parse_xlsx
from services.enrollment.domain.roster_rules import RosterMember

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CHINESE = ["姓名", "身份证号码", "手机号码", "性别", "人员类别", "银行账号", "开户银行", "参保险种"]
FIELDS = ["name", "certno", "phone", "sex", "member_type", "bank_account", "bank_name", "insurance"]
SEX = {"male": "男", "female": "女"}
BOTH = ("basic_medical", "critical_illness_supplement")


def people(n: int, seed: int = 3) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [person(rng, "in_service" if i % 3 else "retired") for i in range(n)]


def chinese_row(p: dict[str, Any]) -> list[str]:
    return [str(p["name"]), str(p["certno"]), str(p["phone"]), SEX[p["sex"]],
            "在职" if p["member_type"] == "in_service" else "退休", str(p["bank_account"]), str(p["bank_name"]),
            "基本医疗保险;大病补充医疗保险"]


def expected(p: dict[str, Any], plans: tuple[str, ...] | None = None) -> RosterMember:
    return RosterMember(name=p["name"], certno=p["certno"], phone=p["phone"], sex=p["sex"],
                        member_type=p["member_type"], bank_account=p["bank_account"], bank_name=p["bank_name"],
                        insurance=BOTH, plans=plans)


def csv_bytes(lines: list[list[str]], encoding: str = "utf-8") -> bytes:
    return "".join(",".join(cells) + "\r\n" for cells in lines).encode(encoding)


def xlsx_bytes(rows: Sequence[Sequence[object]]) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    for row in rows:
        sheet.append(list(row))
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def codes(parsed: ParsedRoster) -> list[str]:
    return [e["code"] for e in parsed.errors]


def test_chinese_headings_and_field_name_headings_give_equal_members() -> None:
    group = people(4)
    by_chinese = parse_csv(csv_bytes([CHINESE, *map(chinese_row, group)]))
    by_field = parse_csv(csv_bytes([FIELDS, *([str(p[f]) if f != "insurance" else "basic_medical;critical_illness_supplement"
                                               for f in FIELDS] for p in group)]))
    assert by_chinese.errors == [] and by_field.errors == []
    assert by_chinese.members == by_field.members == [expected(p) for p in group]


def test_other_accepted_headings_and_whitespace_around_them_are_understood() -> None:
    p = people(1)[0]
    headings = [" 姓  名 ", "\u3000身份证号\u3000", "联系电话", "*性别", "人员类别（在职/退休）", "银行卡号", "开户行",
                "参保险种"]
    parsed = parse_csv(csv_bytes([headings, chinese_row(p)]))
    assert parsed.errors == []
    assert parsed.members == [expected(p)]


def test_columns_may_come_in_any_order_and_the_units_own_columns_are_ignored() -> None:
    group = people(3)
    order = [6, 0, 7, 3, 1, 5, 4, 2]
    headings = ["序号", *(CHINESE[i] for i in order), "备注"]
    lines = [[str(n), *(chinese_row(p)[i] for i in order), "无"] for n, p in enumerate(group, start=1)]
    parsed = parse_csv(csv_bytes([headings, *lines]))
    assert parsed.errors == []
    assert parsed.members == [expected(p) for p in group]


def test_a_gb18030_csv_saved_by_excel_on_chinese_windows_keeps_its_chinese_names() -> None:
    group = people(3)
    data = csv_bytes([CHINESE, *map(chinese_row, group)], encoding="gb18030")
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    parsed = parse_csv(data)
    assert parsed.errors == []
    assert [m.name for m in parsed.members] == [p["name"] for p in group]
    assert parsed.members[0].bank_name == group[0]["bank_name"]


def test_a_utf8_bom_does_not_stick_to_the_first_heading() -> None:
    p = people(1)[0]
    data = csv_bytes([CHINESE, chinese_row(p)])
    parsed = parse_csv(b"\xef\xbb\xbf" + data)
    assert parsed.errors == []
    assert parsed.members == [expected(p)]


@pytest.mark.parametrize("cell", [
    "基本医疗保险;大病补充医疗保险", "基本医疗保险；大病补充医疗保险", "职工基本医疗保险、大额医疗补助",
    '"basic_medical,critical_illness_supplement"', " 基本医疗保险 ; 大病补充医疗保险 ;",
])
def test_insurance_kinds_may_be_separated_by_any_of_the_usual_marks(cell: str) -> None:
    p = people(1)[0]
    parsed = parse_csv(csv_bytes([CHINESE, [*chinese_row(p)[:7], cell]]))
    assert parsed.errors == []
    assert parsed.members[0].insurance == BOTH


def test_an_empty_insurance_cell_means_no_insurance_and_an_unknown_kind_is_named() -> None:
    a, b = people(2)
    parsed = parse_csv(csv_bytes([CHINESE, [*chinese_row(a)[:7], ""], [*chinese_row(b)[:7], "基本医疗保险;商业保险"]]))
    assert parsed.members == [RosterMember(**{**expected(a).__dict__, "insurance": ()})]
    assert parsed.errors == [{"loc": ["members", 1, "insurance"], "line": 3, "code": "unknown_insurance",
                              "msg": parsed.errors[0]["msg"]}]
    assert parsed.errors[0]["msg"].startswith("第3行：") and "商业保险" in parsed.errors[0]["msg"]


def test_values_are_normalised_certno_upper_case_phone_and_account_without_spaces_or_dashes() -> None:
    rng = random.Random(11)
    p = next(q for q in (person(rng) for _ in range(200)) if str(q["certno"]).endswith("X"))
    phone, account = str(p["phone"]), str(p["bank_account"])
    row = chinese_row(p)
    row[1] = f" {str(p['certno']).lower()} "
    row[2] = f"{phone[:3]}-{phone[3:7]} {phone[7:]}"
    row[3] = {"男": "male", "女": "female"}[row[3]]
    row[4] = "在职职工" if row[4] == "在职" else "退休人员"
    row[5] = f"{account[:4]} {account[4:8]}-{account[8:]}"
    parsed = parse_csv(csv_bytes([CHINESE, row]))
    assert parsed.errors == []
    assert parsed.members == [expected(p)]


@pytest.mark.parametrize("cell", ["'{}", '="{}"'])
def test_an_id_number_kept_as_text_by_a_leading_quote_or_an_excel_formula_is_read(cell: str) -> None:
    p = people(1)[0]
    row = chinese_row(p)
    row[1] = cell.format(p["certno"]).replace('"', '""')
    row[1] = f'"{row[1]}"'
    parsed = parse_csv(csv_bytes([CHINESE, row]))
    assert parsed.errors == []
    assert parsed.members == [expected(p)]


def test_a_name_longer_than_the_members_table_holds_is_an_error() -> None:
    p = people(1)[0]
    row = chinese_row(p)
    row[0] = "张" * 101
    parsed = parse_csv(csv_bytes([CHINESE, row]))
    assert [(e["loc"], e["code"]) for e in parsed.errors] == [(["members", 0, "name"], "too_long")]


def test_plans_are_semicolon_separated_and_an_absent_column_or_empty_cell_means_the_default_plans() -> None:
    a, b = people(2)
    with_plans = parse_csv(csv_bytes([[*CHINESE, "互助项目"], [*chinese_row(a), "inpatient;female_cancer"],
                                      [*chinese_row(b), ""]]))
    assert with_plans.errors == []
    assert [m.plans for m in with_plans.members] == [("inpatient", "female_cancer"), None]
    without = parse_csv(csv_bytes([CHINESE, chinese_row(a)]))
    assert without.members[0].plans is None


def test_an_unknown_sex_is_an_error_naming_the_row_and_the_field() -> None:
    a, b = people(2)
    row = chinese_row(b)
    row[3] = "未知"
    parsed = parse_csv(csv_bytes([CHINESE, chinese_row(a), row]))
    assert parsed.errors == [{"loc": ["members", 1, "sex"], "line": 3, "code": "invalid_sex",
                              "msg": "第3行：性别应填“男”或“女”，不能是“未知”。"}]
    assert parsed.members == [expected(a)]


def test_an_unknown_member_type_is_an_error_naming_the_row_and_the_field() -> None:
    p = people(1)[0]
    row = chinese_row(p)
    row[4] = "临时工"
    parsed = parse_csv(csv_bytes([CHINESE, row]))
    assert [(e["loc"], e["code"], e["line"]) for e in parsed.errors] == [
        (["members", 0, "member_type"], "invalid_member_type", 2)]
    assert parsed.errors[0]["msg"].startswith("第2行：")


def test_a_missing_required_column_is_one_error_naming_the_heading() -> None:
    p = people(1)[0]
    parsed = parse_csv(csv_bytes([CHINESE[:2] + CHINESE[3:], chinese_row(p)[:2] + chinese_row(p)[3:]]))
    assert parsed.errors == [{"loc": ["file", "手机号码"], "line": 1, "code": "missing_column",
                              "msg": parsed.errors[0]["msg"]}]
    assert parsed.members == []


@pytest.mark.parametrize("data", [b"", b"\xef\xbb\xbf", b"\r\n\r\n", ",".join(CHINESE).encode() + b"\r\n,,,\r\n"])
def test_an_empty_file_or_a_file_with_only_headings_is_an_empty_roster(data: bytes) -> None:
    parsed = parse_csv(data)
    assert codes(parsed) == ["empty_roster"]
    assert parsed.members == []


def test_blank_lines_are_skipped_and_line_numbers_stay_true_to_the_file() -> None:
    a, b = people(2)
    bad = chinese_row(b)
    bad[3] = "未知"
    lines = [["某某公司工会参互名单"], [], CHINESE, [], chinese_row(a), ["", " ", "", "", "", "", "", ""], bad]
    parsed = parse_csv(csv_bytes(lines))
    assert parsed.members == [expected(a)]
    assert [(e["loc"], e["line"]) for e in parsed.errors] == [(["members", 1, "sex"], 7)]
    assert parsed.errors[0]["msg"].startswith("第7行：")


def test_an_xlsx_id_number_stored_as_a_number_is_reported_never_guessed() -> None:
    a, b, c = people(3)
    as_number: list[object] = [*chinese_row(b)]
    as_number[1] = int(str(b["certno"])[:17] + "0")
    float_account: list[object] = [*chinese_row(c)]
    float_account[5] = float(str(c["bank_account"]))
    parsed = parse_xlsx(xlsx_bytes([CHINESE, chinese_row(a), as_number, float_account]))
    assert parsed.members == [expected(a)]
    assert parsed.errors == [
        {"loc": ["members", 1, "certno"], "line": 3, "code": "number_not_text",
         "msg": "第3行：身份证号码被 Excel 存成了数字，末几位已丢失，请把该列设为文本后重新填写"},
        {"loc": ["members", 2, "bank_account"], "line": 4, "code": "number_not_text",
         "msg": "第4行：银行账号被 Excel 存成了数字，末几位已丢失，请把该列设为文本后重新填写"},
    ]


def test_an_id_number_that_excel_wrote_into_csv_in_scientific_notation_is_reported() -> None:
    p = people(1)[0]
    row = chinese_row(p)
    row[1] = "5.30102E+17"
    parsed = parse_csv(csv_bytes([CHINESE, row]))
    assert [(e["loc"], e["code"]) for e in parsed.errors] == [(["members", 0, "certno"], "number_not_text")]


def test_an_xlsx_phone_stored_as_a_number_is_fine_and_empty_cells_are_read() -> None:
    a, b = people(2)
    row: list[object] = [*chinese_row(a)]
    row[2] = int(str(a["phone"]))
    float_phone: list[object] = [*chinese_row(b)]
    float_phone[2] = float(str(b["phone"]))
    float_phone[7] = None
    parsed = parse_xlsx(xlsx_bytes([["2024年度参互名单"], [], CHINESE, row, [None] * 8, float_phone]))
    assert parsed.errors == []
    assert parsed.members == [expected(a), RosterMember(**{**expected(b).__dict__, "insurance": ()})]


def test_an_xlsx_problem_names_the_member_row_and_the_true_spreadsheet_line() -> None:
    a, b = people(2)
    bad: list[object] = [*chinese_row(b)]
    bad[3] = "未知"
    parsed = parse_xlsx(xlsx_bytes([["参互名单"], CHINESE, chinese_row(a), [None] * 8, bad]))
    assert [(e["loc"], e["line"], e["code"]) for e in parsed.errors] == [(["members", 1, "sex"], 5, "invalid_sex")]


@pytest.mark.parametrize(("filename", "content_type"), [
    ("名单.csv", None), ("roster.CSV", "application/vnd.ms-excel"), ("upload", "text/csv; charset=utf-8"),
])
def test_a_csv_is_chosen_by_its_extension_or_content_type(filename: str, content_type: str | None) -> None:
    p = people(1)[0]
    parsed = parse_roster_file(filename, content_type, csv_bytes([CHINESE, chinese_row(p)]))
    assert parsed.errors == [] and parsed.members == [expected(p)]


@pytest.mark.parametrize(("filename", "content_type"), [
    ("名单.xlsx", None), ("upload", XLSX_TYPE), ("renamed.csv", "text/csv"), ("blob", "application/octet-stream"),
])
def test_an_xlsx_is_chosen_by_its_extension_content_type_or_bytes(filename: str, content_type: str | None) -> None:
    p = people(1)[0]
    parsed = parse_roster_file(filename, content_type, xlsx_bytes([CHINESE, chinese_row(p)]))
    assert parsed.errors == [] and parsed.members == [expected(p)]


@pytest.mark.parametrize(("filename", "content_type", "data"), [
    ("名单.xls", "application/vnd.ms-excel", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 100),
    ("名单.pdf", "application/pdf", b"%PDF-1.7"),
    ("名单.docx", None, b"hello"),
])
def test_an_unsupported_file_type_is_refused(filename: str, content_type: str | None, data: bytes) -> None:
    parsed = parse_roster_file(filename, content_type, data)
    assert codes(parsed) == ["unsupported_file_type"]
    assert parsed.errors[0]["loc"] == ["file"] and parsed.members == []


def test_a_damaged_xlsx_is_refused_as_unreadable() -> None:
    data = xlsx_bytes([CHINESE])
    assert codes(parse_roster_file("名单.xlsx", None, data[: len(data) // 2])) == ["unreadable_file"]
