"""XLSX rosters read with calamine (issue 15): a sheet whose table starts below blank rows and right of blank
columns keeps Excel's line numbers, and number cells in the ID-number and account columns are still reported."""

from __future__ import annotations

import io
import random
from datetime import datetime

from openpyxl import Workbook

from deploy.people import person
from services.enrollment.domain.roster_files import parse_xlsx
from services.enrollment.domain.roster_rules import RosterMember

CHINESE = ["姓名", "身份证号码", "手机号码", "性别", "人员类别", "银行账号", "开户银行", "参保险种", "入职日期"]


def row(p: dict[str, object]) -> list[object]:
    return [p["name"], p["certno"], p["phone"], "男" if p["sex"] == "male" else "女",
            "在职" if p["member_type"] == "in_service" else "退休", p["bank_account"], p["bank_name"],
            "基本医疗保险", datetime(2019, 7, 1)]


def sheet_at(top: int, left: int, rows: list[list[object]]) -> bytes:
    """The rows written from Excel row ``top`` and column ``left`` (1-based); everything above and left blank."""
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    for r, values in enumerate(rows):
        for c, value in enumerate(values):
            if value is not None:
                sheet.cell(row=top + r, column=left + c, value=value)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def test_blank_rows_and_columns_before_the_table_keep_excels_line_numbers() -> None:
    rng = random.Random(15)
    a, b, c, d = (person(rng, "in_service") for _ in range(4))
    bad_sex = row(b)
    bad_sex[3] = "未知"
    number_id = row(c)
    number_id[1] = int(str(c["certno"])[:17] + "0")  # an ID typed into a number cell
    number_account = row(d)
    number_account[5] = float(str(d["bank_account"]))
    # Lines 1-3 blank, table from column C: heading on line 4, members on 5, 7, 8, 9 (line 6 blank).
    parsed = parse_xlsx(sheet_at(4, 3, [CHINESE, row(a), [], bad_sex, number_id, number_account]))
    assert parsed.members == [RosterMember(
        name=str(a["name"]), certno=str(a["certno"]), phone=str(a["phone"]), sex=str(a["sex"]),
        member_type="in_service", bank_account=str(a["bank_account"]), bank_name=str(a["bank_name"]),
        insurance=("basic_medical",), plans=None, line=5)]
    assert [(e["loc"], e["line"], e["code"]) for e in parsed.errors] == [
        (["members", 1, "sex"], 7, "invalid_sex"),
        (["members", 2, "certno"], 8, "number_not_text"),
        (["members", 3, "bank_account"], 9, "number_not_text"),
    ]
    assert parsed.members[0].line == 5 and parsed.errors[0]["msg"].startswith("第7行：")


def test_a_table_from_a1_and_one_from_e10_read_the_same_members() -> None:
    rng = random.Random(16)
    members = [person(rng, "retired") for _ in range(3)]
    at_a1 = parse_xlsx(sheet_at(1, 1, [CHINESE, *map(row, members)]))
    at_e10 = parse_xlsx(sheet_at(10, 5, [CHINESE, *map(row, members)]))
    assert at_a1.errors == at_e10.errors == []
    assert [m.line for m in at_a1.members] == [2, 3, 4] and [m.line for m in at_e10.members] == [11, 12, 13]
    assert [m.certno for m in at_a1.members] == [m.certno for m in at_e10.members] == [p["certno"] for p in members]
