"""Roster files (CSV or XLSX made in Excel/WPS) read into ``RosterMember`` rows: pure, no I/O beyond the bytes.

docs/API.md "Enrollment (8001)", rosters: files carry the same columns as the JSON body, under the Chinese headings union
staff use or the field names, in any order; list fields are ``;``-separated. Every problem is listed with
``loc = ["members", i, field]`` where i is the 0-based index of the member among the file's rows (as in
``check_roster``), and ``line`` = the line Excel shows (header = line 1, blank lines counted), which the Chinese
message names as 第N行, so staff find it in Excel. Each member read keeps its ``line`` for the rule checks.

The reading itself (encodings, heading row, Excel's number cells) is ``_Table``'s, shared with the other
spreadsheet the centre uploads: the members of a period run before the system (``history_rows``).

A row with a problem is left out of ``members``: when ``errors`` is not empty the file should be refused
whole (the rule checks' row numbers would not line up with the file otherwise).
"""

from __future__ import annotations

import csv
import gc
import io
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any, Generic, TypeVar

from services.enrollment.domain.roster_rules import RosterMember

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV_TYPES = frozenset({"text/csv", "application/csv", "text/comma-separated-values", "text/x-csv"})
XLSX_MAGIC = b"PK\x03\x04"
OLE_MAGIC = b"\xd0\xcf\x11\xe0"  # the old binary .xls (and .et) format

# The heading shown to staff for each field, then every heading accepted for it.
HEADINGS: dict[str, str] = {
    "name": "姓名",
    "certno": "身份证号码",
    "phone": "手机号码",
    "sex": "性别",
    "member_type": "人员类别",
    "bank_account": "银行账号",
    "bank_name": "开户银行",
    "insurance": "参保险种",
    "plans": "互助项目",
    "shares": "份数",
}
ALIASES: dict[str, tuple[str, ...]] = {
    "name": ("姓名",),
    "certno": ("身份证号码", "身份证号", "公民身份号码"),
    "phone": ("手机号码", "手机号", "联系电话"),
    "sex": ("性别",),
    "member_type": ("人员类别",),
    "bank_account": ("银行账号", "银行卡号"),
    "bank_name": ("开户银行", "开户行"),
    "insurance": ("参保险种",),
    "plans": ("互助项目",),
    "shares": ("份数", "购买份数"),
}
REQUIRED = ("name", "certno", "phone", "sex", "member_type", "bank_account", "bank_name")
# insurance may be absent (a rulebook may require none, as MemberIn's default []); plans absent -> None;
# shares absent or blank -> 1 (seed 002 "多买几份": a whole number; the rulebook's limit is checked with the rules).
HEADING_TO_FIELD: dict[str, str] = {
    alias: name for name, aliases in ALIASES.items() for alias in (*aliases, name)
}

SEX: dict[str, str] = {"男": "male", "女": "female", "男性": "male", "女性": "female",
                       "male": "male", "female": "female"}
MEMBER_TYPE: dict[str, str] = {"在职": "in_service", "在职职工": "in_service", "在职人员": "in_service",
                               "in_service": "in_service",
                               "退休": "retired", "退休人员": "retired", "退休职工": "retired", "retired": "retired"}
INSURANCE: dict[str, str] = {
    "基本医疗保险": "basic_medical", "职工基本医疗保险": "basic_medical", "basic_medical": "basic_medical",
    "大病补充医疗保险": "critical_illness_supplement", "大额医疗补助": "critical_illness_supplement",
    "critical_illness_supplement": "critical_illness_supplement",
}
LIST_SEPARATORS = str.maketrans({"；": ";", "、": ";", ",": ";", "，": ";"})
NUMBER_LOST = {"certno": "身份证号码", "bank_account": "银行账号"}
MAX_LENGTH = {"name": 100, "bank_name": 100}  # the members table's columns
HEADER_SEARCH_ROWS = 10  # a title line or two may sit above the headings
_BRACKETED = re.compile(r"[（(][^（()）]*[)）]$")  # "人员类别（在职/退休）"
_SCIENTIFIC = re.compile(r"^\d(\.\d+)?E\+?\d+$", re.IGNORECASE)  # how Excel writes a long number into CSV: 5.30102E+17


Row = TypeVar("Row")


class NumberText(str):
    """The text of a spreadsheet cell that held a number, in a column where a number has lost digits."""


@dataclass
class ParsedTable(Generic[Row]):
    members: list[Row] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)


ParsedRoster = ParsedTable[RosterMember]


def _file_error(loc: list[object], msg: str, code: str, line: int = 0) -> dict[str, Any]:
    """A problem with the whole file; ``line`` 0 when no line of the file is to blame (else 第N行 says which)."""
    return {"loc": loc, "msg": f"第{line}行：{msg}" if line else msg, "code": code, "line": line}


def heading_field(heading: object, table: dict[str, str] = HEADING_TO_FIELD) -> str | None:
    """The field a column heading names: whitespace (also inside, "姓  名"), a required-mark ``*`` and a
    trailing bracketed hint are ignored; field names in any case."""
    if heading is None:
        return None
    text = "".join(str(heading).split()).replace("*", "").replace("＊", "")
    text = _BRACKETED.sub("", text)
    return table.get(text) or table.get(text.lower())


def _lookup(table: dict[str, str], text: str) -> str | None:
    text = text.strip()
    return table.get(text) or table.get(text.lower())


def _split_list(text: str) -> list[str]:
    return [part.strip() for part in text.translate(LIST_SEPARATORS).split(";") if part.strip()]


def _insurance(text: str) -> tuple[tuple[str, ...], list[str]]:
    """(kinds, unknown words) of an insurance cell."""
    kinds: list[str] = []
    unknown: list[str] = []
    for word in _split_list(text):
        kind = INSURANCE.get(word) or INSURANCE.get(word.lower())
        if kind is None:
            unknown.append(word)
        elif kind not in kinds:
            kinds.append(kind)
    return tuple(kinds), unknown


def _plans(text: str) -> tuple[str, ...] | None:
    codes = _split_list(text)
    return tuple(dict.fromkeys(codes)) if codes else None


class _Table(ABC, Generic[Row]):
    """Reads rows of cells (already text) into ``Row``s, the heading row found first. The columns a table
    has are the class's: ``HEADINGS`` (field -> heading shown to staff), ``ALIASES`` (every heading accepted),
    ``REQUIRED`` and ``NUMBER_LOST`` (columns whose number cells have lost digits: refused, never guessed)."""

    HEADINGS: dict[str, str] = HEADINGS
    ALIASES: dict[str, tuple[str, ...]] = ALIASES
    REQUIRED: tuple[str, ...] = REQUIRED
    NUMBER_LOST: dict[str, str] = NUMBER_LOST

    def __init__(self) -> None:
        self.result: ParsedTable[Row] = ParsedTable()
        self.number_columns: dict[int, str] = {}  # column index -> field, watched for number cells (XLSX)
        self._heading_to_field = {alias: name for name, aliases in self.ALIASES.items()
                                  for alias in (*aliases, name)}

    def error(self, n: int, line: int, name: str, msg: str, code: str) -> None:
        """A problem of the n-th member (0-based) on spreadsheet line ``line``."""
        self.result.errors.append({"loc": ["members", n, name], "msg": f"第{line}行：{msg}", "code": code,
                                   "line": line})

    def read(self, rows: Iterator[list[str]]) -> ParsedTable[Row]:
        """``rows``: every line of the file as its cells' text, blank lines included (line 1 first)."""
        header = self._find_header(rows)
        if header is None:
            self.result.errors.append(_file_error(["members"], "名单为空。", "empty_roster"))
            return self.result
        header_line, columns = header
        if self.result.errors:
            return self.result
        self._read_members(rows, header_line, columns)
        if not self.result.members and not self.result.errors:
            self.result.errors.append(_file_error(["members"], "名单为空：只有表头，没有人员。", "empty_roster",
                                                  header_line))
        return self.result

    def _find_header(self, rows: Iterator[list[str]]) -> tuple[int, dict[str, int]] | None:
        """The heading row: the first of the first few non-blank rows naming two or more fields, else the first
        non-blank row. Rows above it (a title) are skipped."""
        looked_at: list[tuple[int, list[str]]] = []
        chosen: tuple[int, list[str]] | None = None
        for line, cells in enumerate(rows, start=1):
            if not any(cell.strip() for cell in cells):
                continue
            looked_at.append((line, cells))
            if sum(1 for cell in cells if heading_field(cell, self._heading_to_field)) >= 2:
                chosen = (line, cells)
                break
            if len(looked_at) >= HEADER_SEARCH_ROWS:
                break
        if chosen is None:
            if not looked_at:
                return None
            chosen = looked_at[0]
            # rows after the first that were looked at are data rows under a heading row that names nothing
            # useful: it is refused for missing columns below, so they need no reading.
        line, cells = chosen
        columns: dict[str, int] = {}
        for index, cell in enumerate(cells):
            name = heading_field(cell, self._heading_to_field)
            if name is None:
                continue  # 序号, 备注 and other columns of the unit's own are ignored
            if name in columns:
                self.result.errors.append(_file_error(
                    ["file", self.HEADINGS[name]], f"“{self.HEADINGS[name]}”列出现了不止一次（第{columns[name] + 1}列和"
                    f"第{index + 1}列），请只保留一列。", "duplicate_column", line))
            else:
                columns[name] = index
        for name in self.REQUIRED:
            if name not in columns:
                self.result.errors.append(_file_error(
                    ["file", self.HEADINGS[name]], f"缺少“{self.HEADINGS[name]}”列（表头可写 {'、'.join(self.ALIASES[name])} 或 "
                    f"{name}）。", "missing_column", line))
        for name in self.NUMBER_LOST:
            if name in columns:
                self.number_columns[columns[name]] = name
        return line, columns

    @abstractmethod
    def _read_members(self, rows: Iterator[list[str]], header_line: int, columns: dict[str, int]) -> None:
        """Each kind of table reads its own rows (rosters here, the history of a period in history_rows)."""


class _Rows(_Table[RosterMember]):
    """Reads roster members."""

    def __init__(self) -> None:
        super().__init__()
        # Most cells of these columns repeat a handful of values: each distinct value is worked out once.
        self._sex: dict[str, str | None] = {}
        self._type: dict[str, str | None] = {}
        self._insurance: dict[str, tuple[tuple[str, ...], list[str]]] = {}
        self._plans: dict[str, tuple[str, ...] | None] = {}

    def _read_members(self, rows: Iterator[list[str]], header_line: int,
                      columns: dict[str, int]) -> None:
        members = self.result.members
        errors = self.result.errors
        i_name, i_cert, i_phone, i_sex, i_type, i_account, i_bank = (columns[name] for name in REQUIRED)
        i_insurance = columns.get("insurance", -1)
        i_plans = columns.get("plans", -1)
        i_shares = columns.get("shares", -1)
        width = max(columns.values()) + 1
        padding = [""] * width
        sex_of, type_of, insurance_of, plans_of = self._sex, self._type, self._insurance, self._plans
        max_name, max_bank = MAX_LENGTH["name"], MAX_LENGTH["bank_name"]
        n = -1
        for line, cells in enumerate(rows, start=header_line + 1):
            if len(cells) < width:
                cells = cells + padding[len(cells):]
            name = cells[i_name].strip()
            raw_certno, raw_account = cells[i_cert], cells[i_account]
            certno = raw_certno.strip().upper()
            phone = cells[i_phone].strip().replace(" ", "").replace("-", "")
            account = raw_account.strip().replace(" ", "").replace("-", "")
            bank = cells[i_bank].strip()
            # the short columns are looked up as they stand: each distinct cell is trimmed and read once
            sex_text, type_text = cells[i_sex], cells[i_type]
            insurance_text = cells[i_insurance] if i_insurance >= 0 else ""
            plans_text = cells[i_plans] if i_plans >= 0 else ""
            shares_text = cells[i_shares].strip() if i_shares >= 0 else ""
            if not (name or certno or phone or account or bank or shares_text) and not (
                    sex_text.strip() or type_text.strip() or insurance_text.strip() or plans_text.strip()):
                continue  # a blank line, or only the unit's own columns (a pre-numbered 序号) filled in
            n += 1
            errors_before = len(errors)
            if not (certno.isalnum() and account.isdigit()) or type(raw_certno) is not str \
                    or type(raw_account) is not str:
                certno, account = self._unusual_numbers(n, line, raw_certno, certno, raw_account, account)
            try:
                sex = sex_of[sex_text]
            except KeyError:
                sex = sex_of[sex_text] = _lookup(SEX, sex_text)
            if sex is None:
                self.error(n, line, "sex", f"性别应填“男”或“女”，不能是“{sex_text.strip()}”。" if sex_text.strip()
                           else "性别未填写（应填“男”或“女”）。", "invalid_sex")
            try:
                member_type = type_of[type_text]
            except KeyError:
                member_type = type_of[type_text] = _lookup(MEMBER_TYPE, type_text)
            if member_type is None:
                self.error(n, line, "member_type",
                           f"人员类别应填“在职”或“退休”，不能是“{type_text.strip()}”。" if type_text.strip() else
                           "人员类别未填写（应填“在职”或“退休”）。", "invalid_member_type")
            try:
                insurance, unknown = insurance_of[insurance_text]
            except KeyError:
                insurance, unknown = insurance_of[insurance_text] = _insurance(insurance_text)
            if unknown:
                self.error(n, line, "insurance", f"参保险种“{'、'.join(unknown)}”无法识别（可填：基本医疗保险、"
                           "大病补充医疗保险，多个用分号隔开）。", "unknown_insurance")
            try:
                plans = plans_of[plans_text]
            except KeyError:
                plans = plans_of[plans_text] = _plans(plans_text)
            shares = 1
            if shares_text:
                shares = self._shares(n, line, shares_text)
            if len(name) > max_name or len(bank) > max_bank:
                self._too_long(n, line, name, bank)
            if "\x00" in name or "\x00" in bank:  # PostgreSQL text cannot hold a NUL
                for key, value in (("name", name), ("bank_name", bank)):
                    if "\x00" in value:
                        self.error(n, line, key, f"{HEADINGS[key]}含有不可见的 NUL 字符，请删除后重新上传。",
                                   "invalid_text")
            if sex is not None and member_type is not None and len(errors) == errors_before:
                members.append(RosterMember(name, certno, phone, sex, member_type, account, bank, insurance, plans,
                                            line, shares))

    def _unusual_numbers(self, n: int, line: int, raw_certno: str, certno: str, raw_account: str, account: str
                         ) -> tuple[str, str]:
        """An ID number or account that is not plain digits: lost to a number cell, or kept as text by a trick."""
        out = []
        for name, raw, value in (("certno", raw_certno, certno), ("bank_account", raw_account, account)):
            if isinstance(raw, NumberText) or _SCIENTIFIC.match(value):
                self.error(n, line, name, f"{NUMBER_LOST[name]}被 Excel 存成了数字，末几位已丢失，请把该列设为文本后"
                           "重新填写", "number_not_text")
            elif value.startswith("'"):  # typed to keep Excel from making a number of it
                value = value[1:]
            elif value.startswith('="') and value.endswith('"'):  # ="5301…", the other way to keep it text
                value = value[2:-1]
            out.append(value)
        return out[0], out[1]

    def _shares(self, n: int, line: int, text: str) -> int:
        """A shares cell: a whole number from 1 ("2", or "2.0" from a number cell); else an error and 1."""
        whole = text[:-2] if text.endswith(".0") else text
        if whole.isdigit() and whole.isascii() and len(whole) <= 6 and int(whole) >= 1:
            return int(whole)
        self.error(n, line, "shares", f"份数应为不小于 1 的整数，不能是“{text[:20]}”。", "invalid_shares")
        return 1

    def _too_long(self, n: int, line: int, name: str, bank: str) -> None:
        for key, value in (("name", name), ("bank_name", bank)):
            if len(value) > MAX_LENGTH[key]:
                self.error(n, line, key, f"{HEADINGS[key]}超过 {MAX_LENGTH[key]} 个字。", "too_long")


@contextmanager
def _gc_paused() -> Iterator[None]:
    """The cyclic collector is held off while a file is read: reading allocates hundreds of thousands of
    acyclic objects, and each collection would walk the growing member list again (~20% of the time)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _decode(data: bytes) -> str | None:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):  # Excel's "Unicode text" (tab-separated UTF-16)
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            return None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030")  # Excel and WPS on Chinese Windows save CSV in the ANSI code page (GBK)
    except UnicodeDecodeError:
        return None


def parse_csv(data: bytes) -> ParsedRoster:
    """A CSV roster: UTF-8 (with or without BOM), else GB18030; comma-separated (tab for UTF-16 text)."""
    return read_csv(data, _Rows())


def read_csv(data: bytes, reader: _Table[Row]) -> ParsedTable[Row]:
    """A CSV table read by ``reader``."""
    text = _decode(data)
    if text is None:
        return ParsedTable(errors=[_file_error(["file"], "文件编码无法识别，请用 Excel 另存为“CSV UTF-8”或 .xlsx 后重新上传。",
                                                "unreadable_file")])
    first = text[:text.find("\n")] if "\n" in text else text
    delimiter = "\t" if "\t" in first and "," not in first else ","
    try:
        with _gc_paused():
            # a spreadsheet line is a record: a quoted cell may hold a line break
            return reader.read(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    except csv.Error as exc:
        result = reader.result
        result.members.clear()
        result.errors.append(_file_error(["file"], f"CSV 文件格式有误：{exc}", "unreadable_file"))
        return result


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # a phone typed into a number cell: 13812345678.0
    if isinstance(value, date) and not isinstance(value, datetime):
        value = datetime.combine(value, time())  # calamine gives a date cell as a date: text as Excel's datetime
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return str(value)


def _xlsx_rows(raw: Iterable[Sequence[object]], number_columns: dict[int, str]) -> Iterator[list[str]]:
    """Rows as text; a number in the ID-number or bank-account column becomes a ``NumberText``."""
    text = _cell_text
    for values in raw:
        cells = [value if type(value) is str else text(value) for value in values]
        for index in number_columns:
            if index < len(values) and type(values[index]) in (int, float):  # not bool, not str
                cells[index] = NumberText(cells[index])
        yield cells


def parse_xlsx(data: bytes) -> ParsedRoster:
    """An XLSX roster: the first worksheet, values as last calculated by Excel (formulas not evaluated)."""
    return read_xlsx(data, _Rows())


def read_xlsx(data: bytes, reader: _Table[Row]) -> ParsedTable[Row]:
    """An XLSX table read by ``reader``; once the heading row is known, the reader's ``NUMBER_LOST`` columns
    (ID number, bank account) are watched for number cells.

    Read with calamine (Rust, ``python-calamine``): 50,000 rows in a fraction of openpyxl's time. Its values keep
    the cell's type (a number cell is an int or float, never guessed from text), and ``skip_empty_area=False``
    keeps the blank rows and columns before the first filled cell, so line N here is line N in Excel."""
    from python_calamine import CalamineWorkbook

    try:
        workbook = CalamineWorkbook.from_filelike(io.BytesIO(data))
        try:
            if not workbook.sheet_names:
                return ParsedTable(errors=[_file_error(["members"], "名单为空。", "empty_roster")])
            rows = workbook.get_sheet_by_index(0).to_python(skip_empty_area=False)
        finally:
            workbook.close()
    except Exception as exc:  # a damaged or foreign file: zip, XML or calamine errors of many kinds
        return ParsedTable(errors=[_file_error(["file"], "无法读取此 XLSX 文件，请用 Excel 或 WPS 另存为 .xlsx 后重新上传"
                                                f"（{type(exc).__name__}）。", "unreadable_file")])
    with _gc_paused():
        return reader.read(_xlsx_rows(rows, reader.number_columns))


def parse_roster_file(filename: str, content_type: str | None, data: bytes) -> ParsedRoster:
    """A roster file by its extension, else its content type; an .xlsx renamed .csv is recognised by its bytes."""
    return parse_table_file(filename, content_type, data, _Rows)


def parse_table_file(filename: str, content_type: str | None, data: bytes,
                     reader: Callable[[], _Table[Row]]) -> ParsedTable[Row]:
    """A CSV or XLSX file read by a new ``reader()``, the kind told as ``parse_roster_file`` tells it."""
    extension = filename.rsplit(".", 1)[-1].strip().lower() if "." in filename else ""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if extension == "xlsx" or (extension != "csv" and media == XLSX_TYPE):
        kind = "xlsx"
    elif extension == "csv" or media in CSV_TYPES:
        kind = "csv"
    elif data.startswith(XLSX_MAGIC):
        kind = "xlsx"
    else:
        kind = ""
    if kind == "csv" and data.startswith(XLSX_MAGIC):
        kind = "xlsx"
    if kind == "xlsx":
        return read_xlsx(data, reader())
    if kind == "csv":
        return read_csv(data, reader())
    hint = "旧版 .xls 文件请" if data.startswith(OLE_MAGIC) or extension in ("xls", "et") else "请"
    return ParsedTable(errors=[_file_error(["file"], f"不支持的文件类型（{filename}）。{hint}用 Excel 或 WPS 另存为 "
                                            ".xlsx 或 .csv 后重新上传。", "unsupported_file_type")])
