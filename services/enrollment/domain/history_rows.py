"""The members of a period run before this system (on paper, in Excel): who was covered, in which unit, and
whether they received aid. Pure, no I/O: the file reader and the checks; ``services/enrollment/history.py``
gathers the facts and stores the rows.

Renewal fees (seed 003 第四条: 120 for members of the previous period, 150 for new ones), the retiree rule
(第一条, from the 19th period) and loyalty (第十五条: periods in a row without aid) all ask who was covered in
an earlier period. At go-live that period ran on paper, so the centre imports its list once.

Rows are named as staff see them: a file's row by ``line``, the spreadsheet's line number (heading = line 1,
first data row = line 2) and "第N行" with that N; a JSON row by its 0-based index in ``loc`` and "第N条" with
N = index + 1. Every ``loc`` is ``["members", index, field]``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from services.enrollment.domain.roster_files import _SCIENTIFIC, MEMBER_TYPE, NumberText, _lookup, _Table
from services.enrollment.domain.roster_rules import stored_certno
from shared import idnumber

# The heading shown to staff for each column, then every heading accepted (field names too, in any case).
HISTORY_HEADINGS: dict[str, str] = {
    "certno": "身份证号码",
    "unit": "单位代码",
    "member_type": "人员类别",
    "aid_received": "是否获得补助",
}
HISTORY_ALIASES: dict[str, tuple[str, ...]] = {
    "certno": ("身份证号码", "身份证号", "公民身份号码"),
    "unit": ("单位代码", "基层工会代码", "工会代码", "单位工会代码"),
    "member_type": ("人员类别",),
    "aid_received": ("是否获得补助", "获得补助", "是否获补助", "已获补助"),
}
HISTORY_NUMBER_LOST = {"certno": "身份证号码"}
AID_RECEIVED: dict[str, bool] = {"是": True, "否": False, "有": True, "无": False,
                                 "true": True, "false": False}  # XLSX's TRUE/FALSE cells read as text


@dataclass(frozen=True)
class HistoryRow:
    """One person covered in a past period. ``index``: 0-based among the rows given; ``line``: the
    spreadsheet's line, 0 for JSON."""

    certno: str
    unit: str
    member_type: str  # in_service | retired
    aid_received: bool
    index: int
    line: int = 0


def where(index: int, line: int) -> str:
    """How a row is named to people: 第N行 (spreadsheet line) for files, 第N条 (1-based) for JSON."""
    return f"第{line}行" if line else f"第{index + 1}条"


def row_error(index: int, line: int, name: str, msg: str, code: str) -> dict[str, Any]:
    error: dict[str, Any] = {"loc": ["members", index, name], "msg": f"{where(index, line)}：{msg}", "code": code}
    if line:
        error["line"] = line
    return error


class HistoryTable(_Table[HistoryRow]):
    """Reads a history file with the roster reader's machinery (encodings, heading row, Excel's number
    cells): only the columns and the reading of a row are its own. Columns of the unit's own (序号, 姓名,
    备注) are ignored."""

    HEADINGS = HISTORY_HEADINGS
    ALIASES = HISTORY_ALIASES
    REQUIRED = ("certno", "unit", "member_type", "aid_received")
    NUMBER_LOST = HISTORY_NUMBER_LOST

    def _read_members(self, rows: Iterator[list[str]], header_line: int, columns: dict[str, int]) -> None:
        out, errors = self.result.members, self.result.errors
        i_cert, i_unit, i_type, i_aid = (columns[name] for name in self.REQUIRED)
        width = max(columns.values()) + 1
        index = -1
        for line, cells in enumerate(rows, start=header_line + 1):
            if len(cells) < width:
                cells = cells + [""] * (width - len(cells))
            raw_certno, unit, type_text, aid_text = cells[i_cert], cells[i_unit], cells[i_type], cells[i_aid]
            if not (raw_certno.strip() or unit.strip() or type_text.strip() or aid_text.strip()):
                continue  # a blank line, or only the unit's own columns filled in
            index += 1
            before = len(errors)
            certno = raw_certno.strip().upper()
            if isinstance(raw_certno, NumberText) or _SCIENTIFIC.match(certno):
                errors.append(row_error(index, line, "certno", "身份证号码被 Excel 存成了数字，末几位已丢失，请把该列设为"
                                        "文本后重新填写。", "number_not_text"))
            elif certno.startswith("'"):  # typed to keep Excel from making a number of it
                certno = certno[1:]
            elif certno.startswith('="') and certno.endswith('"'):
                certno = certno[2:-1]
            member_type = _lookup(MEMBER_TYPE, type_text)
            if member_type is None:
                errors.append(row_error(
                    index, line, "member_type", f"人员类别应填“在职”或“退休”，不能是“{type_text.strip()}”。"
                    if type_text.strip() else "人员类别未填写（应填“在职”或“退休”）。", "invalid_member_type"))
            aid = AID_RECEIVED.get(aid_text.strip().lower())
            if aid is None:
                errors.append(row_error(
                    index, line, "aid_received", f"是否获得补助应填“是”或“否”，不能是“{aid_text.strip()}”。"
                    if aid_text.strip() else "是否获得补助未填写（应填“是”或“否”）。", "invalid_aid_received"))
            if len(errors) == before and member_type is not None and aid is not None:
                out.append(HistoryRow(stored_certno(certno), unit.strip(), member_type, aid, index, line))


def check_history(rows: Sequence[HistoryRow], *, member_types: Iterable[str], units: set[str]) -> list[dict[str, Any]]:
    """Every problem with rows read well: the ID number (GB 11643, as for rosters), the unit (a unit union
    in the system), the member type (one the period's rulebook accepts, 第一条) and one row per person
    (第四条: 每人限一份)."""
    allowed = set(member_types)
    errors: list[dict[str, Any]] = []
    seen: dict[str, HistoryRow] = {}
    for row in rows:
        try:  # the same reading as rosters: any year's region code, a 15-digit number already made 18 (issue #8)
            idnumber.parse(row.certno)
            valid = True
        except idnumber.IdNumberError:
            valid = False
        if not valid:
            errors.append(row_error(row.index, row.line, "certno", "身份证号码无效（校验位、出生日期或地区码错误）。",
                                    "invalid_certno"))
        elif row.certno in seen:
            first = seen[row.certno]
            errors.append(row_error(row.index, row.line, "certno", f"与{where(first.index, first.line)}是同一人"
                                    "（每人限一份）。", "duplicate_person"))
        else:
            seen[row.certno] = row
        if row.unit not in units:
            errors.append(row_error(row.index, row.line, "unit", f"基层工会“{row.unit}”不存在。" if row.unit
                                    else "单位代码未填写。", "unit_not_found"))
        if row.member_type not in allowed:
            errors.append(row_error(row.index, row.line, "member_type", f"该期不接受此人员类别（{row.member_type}）。",
                                    "member_type_not_allowed"))
    return errors
