"""The previous period's list as a file (issue #8): the roster file reader's machinery with the history's own
columns (身份证号码, 单位代码, 人员类别, 是否获得补助), and the row checks. Pure: no database."""

from __future__ import annotations

import csv
import io

from openpyxl import Workbook

from services.enrollment.domain.history_rows import HistoryRow, HistoryTable, check_history
from services.enrollment.domain.roster_files import parse_table_file

WUHUA_1990 = "530102199003070016"  # 五华区, born 7 March 1990, a man (17th digit 1)
GEJIU_1955 = "532501195512120025"  # 个旧市, born 12 December 1955, a woman (17th digit 2)


def csv_file(lines: list[list[object]], encoding: str = "utf-8") -> bytes:
    out = io.StringIO()
    csv.writer(out).writerows(lines)
    return out.getvalue().encode(encoding)


def read(data: bytes, name: str = "history.csv") -> tuple[list[HistoryRow], list[tuple[object, ...]]]:
    parsed = parse_table_file(name, None, data, HistoryTable)
    return parsed.members, [(e["loc"], e["code"], e["line"]) for e in parsed.errors]


def test_the_test_numbers_are_valid_gb11643_numbers() -> None:
    assert check_history([HistoryRow(WUHUA_1990, "U1", "in_service", False, 0),
                          HistoryRow(GEJIU_1955, "U1", "retired", True, 1)],
                         member_types=["in_service", "retired"], units={"U1"}) == []


def test_headings_in_any_order_with_aliases_hints_and_the_units_own_columns() -> None:
    data = csv_file([["序号", "是否获补助", "人员类别（在职/退休）", "工会代码", "姓名", "公民身份号码"],
                     [1, "否", "在职", "YN-KM-WH-001", "王伟", WUHUA_1990],
                     [2, "是", "退休人员", " YN-KM-WH-002 ", "欧阳䶮", GEJIU_1955.lower()]], "gb18030")
    rows, errors = read(data)
    assert errors == []
    assert rows == [HistoryRow(WUHUA_1990, "YN-KM-WH-001", "in_service", False, 0, 2),
                    HistoryRow(GEJIU_1955, "YN-KM-WH-002", "retired", True, 1, 3)]


def test_bad_cells_are_named_by_their_spreadsheet_line_and_0_based_index() -> None:
    data = csv_file([["身份证号码", "单位代码", "人员类别", "是否获得补助"],
                     [WUHUA_1990, "U1", "在职", "否"],
                     [],
                     [GEJIU_1955, "U1", "", "也许"],
                     ["5.30102E+17", "U1", "在职", "是"]])
    rows, errors = read(data)
    assert [r.certno for r in rows] == [WUHUA_1990]
    assert errors == [(["members", 1, "member_type"], "invalid_member_type", 4),
                      (["members", 1, "aid_received"], "invalid_aid_received", 4),
                      (["members", 2, "certno"], "number_not_text", 5)]


def test_xlsx_true_false_cells_and_an_id_number_kept_as_text_by_a_quote() -> None:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["身份证号码", "单位代码", "人员类别", "是否获得补助"])
    sheet.append([f"'{WUHUA_1990}", "U1", "在职", True])
    sheet.append([GEJIU_1955, "U1", "退休", False])
    out = io.BytesIO()
    book.save(out)
    rows, errors = read(out.getvalue(), "history.xlsx")
    assert errors == []
    assert [(r.certno, r.aid_received, r.line) for r in rows] == [(WUHUA_1990, True, 2), (GEJIU_1955, False, 3)]


def test_checks_name_json_rows_by_their_1_based_number_and_file_rows_by_line() -> None:
    wrong_digit = WUHUA_1990[:-1] + "7"
    errors = check_history([HistoryRow(wrong_digit, "U1", "in_service", False, 0),
                            HistoryRow(GEJIU_1955, "U9", "retired", False, 1),
                            HistoryRow(GEJIU_1955, "U1", "retired", False, 2, 7)],
                           member_types=["in_service"], units={"U1"})
    assert [(e["loc"], e["code"], e["msg"].split("：")[0]) for e in errors] == [
        (["members", 0, "certno"], "invalid_certno", "第1条"),
        (["members", 1, "unit"], "unit_not_found", "第2条"),
        (["members", 1, "member_type"], "member_type_not_allowed", "第2条"),
        (["members", 2, "certno"], "duplicate_person", "第7行"),
        (["members", 2, "member_type"], "member_type_not_allowed", "第7行"),
    ]
    assert "第2条" in errors[3]["msg"] and errors[3]["line"] == 7 and "line" not in errors[0]
