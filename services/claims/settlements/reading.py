"""Reading a bureau feed as a stream (issue #12 item 1): the body a chunk at a time, never whole.

What may come: a JSON array (``application/json``, read whole: bounded at 64 MiB by shared/guards.py), NDJSON
(``application/x-ndjson``), or a multipart upload whose ``file`` part is NDJSON, CSV or tab-separated text with
the national field names (setl_id, certno, ...) as headings, the way bureaus exchange detail files. Either a
raw body or the file may be gzip-compressed: told by its first two bytes (1f 8b), whatever it is called.

Each record comes out as ``(line, index, record_or_refusal, json_text)``: ``line`` the physical line in the
(decompressed) file, 1-based, counting a CSV's heading as line 1 the way a spreadsheet does; ``index`` the
record's place among the records, 0-based; ``json_text`` the record as JSON for storing (for NDJSON the line
as sent, so nothing is lost or re-encoded).

NDJSON comes in blocks of up to BLOCK lines (``Lines``) so that the records can be decoded and checked as columns
(``Lines.frame`` here, domain/feed_columns.py); ``Lines.items`` reads them one by one as above.
"""

from __future__ import annotations

import csv
import json
import math
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import polars as pl
from pydantic_core import from_json
from python_multipart.multipart import MultipartParser, parse_options_header

from services.claims.domain.feed import Refusal
from shared.errors import Invalid

GZIP_MAGIC = b"\x1f\x8b"
BOM = b"\xef\xbb\xbf"
MAX_LINE = 1024 * 1024  # one record's line; longer is refused (memory stays flat whatever is sent)

BLOCK = 10000  # NDJSON lines decoded and checked together

Item = tuple[int | None, int, dict[str, Any] | Refusal, str | None]

# A line that is plainly a flat JSON object of text values (no number, null, array or nested object): only such
# lines are decoded as columns; any other goes through ndjson_record.
_WS = r"[ \t\r]*"
_STRING = r'"(?:[^"\\\x00-\x1f]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*"'
_PAIR = f"{_WS}{_STRING}{_WS}:{_WS}{_STRING}{_WS}"
_FLAT = rf"^{_WS}\{{(?:{_PAIR}(?:,{_PAIR})*|{_WS})\}}{_WS}$"
_SURROGATE = r"\\u[dD][89a-fA-F]"
_SURROGATE_PAIR = r"\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}"


@dataclass(slots=True)
class Lines:
    """NDJSON lines as read (``None``: a line too long), numbered, the first being record ``first_index``."""

    numbers: list[int]
    raws: list[bytes | None]
    first_index: int

    def __len__(self) -> int:
        return len(self.raws)

    def items(self, skip: list[bool] | None = None) -> list[Item]:
        """The records read one by one (ndjson_record), but for those at a position where ``skip`` is true."""
        out: list[Item] = []
        for k, (number, raw) in enumerate(zip(self.numbers, self.raws, strict=True)):
            if skip is not None and skip[k]:
                continue
            if raw is None:
                out.append((number, self.first_index + k,
                            Refusal("line", "line_too_long", f"一行超过 {MAX_LINE} 字节"), None))
            else:
                record, stored = ndjson_record(raw)
                out.append((number, self.first_index + k, record, stored))
        return out

    def frame(self) -> tuple[pl.DataFrame, list[int]]:
        """The lines that are plainly flat JSON objects of text values, decoded in one go: a frame of text
        columns (one row per such line) and their positions among the lines."""
        try:
            series = pl.Series(self.raws, dtype=pl.Binary).cast(pl.String)
        except pl.exceptions.PolarsError:  # not all UTF-8: line by line
            series = pl.Series([_utf8(raw) for raw in self.raws], dtype=pl.String)
        plain = (series.str.contains(_FLAT) & ~series.str.contains(r"\\u0000")
                 & ~series.str.contains('\\"', literal=True)  # no quote inside a text: keys counted below
                 & (series.str.count_matches(_SURROGATE) == 2 * series.str.count_matches(_SURROGATE_PAIR)))
        plain = plain.fill_null(False)
        if not plain.any():
            return pl.DataFrame(), []
        lines = series.filter(plain)
        try:  # the columns as the first lines name them: twice as fast as reading every line for them
            frame = lines.str.json_decode(infer_schema_length=8).struct.unnest()
        except pl.exceptions.ComputeError:  # a field first named further down
            frame = lines.str.json_decode(infer_schema_length=None).struct.unnest()
        # every key came out as a value: none sent twice (Python's reading keeps the last one, this the first),
        # none missed by the columns read from the first lines
        whole = lines.str.count_matches('":', literal=True) == frame.select(
            pl.sum_horizontal(pl.all().is_not_null()).alias("n"))["n"]
        positions = plain.arg_true()
        if not whole.all():
            frame, positions = frame.filter(whole), positions.filter(whole)
        return frame, positions.to_list()


def _utf8(raw: bytes | None) -> str | None:
    if raw is None:
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


async def file_chunks(content_type: str, stream: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """The feed's bytes: the body itself, or the ``file`` part of a multipart body, parsed as it arrives."""
    kind, options = parse_options_header(content_type)
    if kind != b"multipart/form-data":
        async for chunk in stream:
            if chunk:
                yield chunk
        return
    boundary = options.get(b"boundary")
    if not boundary:
        raise Invalid("multipart 请求缺少 boundary。", code="invalid_multipart")
    out: list[bytes] = []
    state: dict[str, Any] = {"field": b"", "value": b"", "name": None, "is_file": False, "seen": False}

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state["field"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        state["value"] += data[start:end]

    def on_header_end() -> None:
        if state["field"].strip().lower() == b"content-disposition":
            state["name"] = parse_options_header(state["value"])[1].get(b"name")
        state["field"], state["value"] = b"", b""

    def on_part_begin() -> None:
        state["name"] = None

    def on_headers_finished() -> None:
        state["is_file"] = state["name"] == b"file" and not state["seen"]
        state["seen"] = state["seen"] or state["is_file"]

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if state["is_file"]:
            out.append(data[start:end])

    def on_part_end() -> None:
        state["is_file"] = False

    parser = MultipartParser(boundary, {
        "on_header_field": on_header_field, "on_header_value": on_header_value, "on_header_end": on_header_end,
        "on_part_begin": on_part_begin, "on_headers_finished": on_headers_finished,
        "on_part_data": on_part_data, "on_part_end": on_part_end})
    async for chunk in stream:
        try:
            parser.write(chunk)
        except Exception as exc:  # python-multipart's own errors: a malformed envelope
            raise Invalid(f"multipart 请求格式错误：{exc}", code="invalid_multipart") from None
        if out:
            yield b"".join(out)
            out.clear()
    parser.finalize()
    if out:
        yield b"".join(out)
    if not state["seen"]:
        raise Invalid("请在 file 字段上传结算明细文件。", code="file_missing",
                      errors=[{"loc": ["body", "file"], "msg": "缺少文件", "code": "file_missing"}])


async def gunzipped(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """The bytes as sent, or inflated when they begin with gzip's magic (several members in a row allowed)."""
    head = b""
    async for chunk in chunks:
        head += chunk
        if len(head) >= 2:
            break
    if not head.startswith(GZIP_MAGIC):
        if head:
            yield head
        async for chunk in chunks:
            yield chunk
        return
    inflater = zlib.decompressobj(wbits=31)

    def inflate(data: bytes) -> bytes:
        nonlocal inflater
        out = []
        while data:
            try:
                out.append(inflater.decompress(data))
            except zlib.error:
                raise Invalid("gzip 压缩数据已损坏，未处理。", code="invalid_gzip") from None
            data = inflater.unused_data
            if data:  # the next gzip member
                inflater = zlib.decompressobj(wbits=31)
        return b"".join(out)

    pending = inflate(head)
    if pending:
        yield pending
    async for chunk in chunks:
        data = inflate(chunk)
        if data:
            yield data
    if not inflater.eof:
        raise Invalid("gzip 文件不完整（被截断），未处理。", code="invalid_gzip")


async def lines(chunks: AsyncIterator[bytes]) -> AsyncIterator[list[tuple[int, bytes | None]]]:
    """Physical lines in lists (one list per chunk read, for speed), numbered from 1, without their line
    ending; a line longer than MAX_LINE comes as None (refused, its bytes dropped)."""
    number = 0
    rest = b""
    overlong = False
    async for chunk in chunks:
        parts = chunk.split(b"\n")
        parts[0] = rest + parts[0]
        rest = parts.pop()
        batch: list[tuple[int, bytes | None]] = []
        for part in parts:
            number += 1
            batch.append((number, None if overlong or len(part) > MAX_LINE else part))
            overlong = False
        if len(rest) > MAX_LINE:
            overlong, rest = True, b""
        if batch:
            yield batch
    if rest or overlong:
        yield [(number + 1, None if overlong else rest)]


def _text(raw: bytes) -> str | None:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        try:
            return raw.decode("gb18030")  # Excel's "CSV" on a Chinese Windows
        except UnicodeDecodeError:
            return None


def ndjson_record(raw: bytes) -> tuple[dict[str, Any] | Refusal, str | None]:
    if b"\\u0000" in raw:
        return Refusal("line", "invalid_text", "含有 NUL 字符（\\u0000），无法保存"), None
    try:
        value = from_json(raw, allow_inf_nan=False)
    except ValueError as exc:
        return Refusal("line", "invalid_json", f"不是有效的 JSON：{str(exc)[:120]}"), None
    if not isinstance(value, dict):
        return Refusal("line", "settlement_record_invalid", "每行应是一个 JSON 对象"), None
    if all(type(v) is str for v in value.values()):  # the usual line: kept as sent
        return value, raw.decode("utf-8")
    # Numbers: 1e999999 reads as infinity here and overflows PostgreSQL's numeric; kept re-written instead.
    if not _finite(value):
        return Refusal("line", "invalid_number", "含有超出范围的数字（如 1e999999），无法保存"), None
    return value, json.dumps(value, ensure_ascii=False)


def _finite(value: Any) -> bool:
    kind = type(value)
    if kind is float:
        return math.isfinite(value) and (value == 0 or 1e-300 < abs(value) < 1e300)
    if kind is dict:
        return all(_finite(v) for v in value.values())
    if kind is list:
        return all(_finite(v) for v in value)
    return True


async def records(content_type: str, stream: AsyncIterator[bytes]) -> AsyncIterator[list[Item] | Lines]:
    """The feed's records, in lists as they arrive, NDJSON in blocks (see the module's docstring)."""
    index = 0
    fmt: str | None = None
    headings: list[str] = []
    block = Lines([], [], 0)
    async for batch in lines(gunzipped(file_chunks(content_type, stream))):
        out: list[Item] = []
        for number, raw in batch:
            if fmt == "ndjson":
                if raw is not None:
                    if raw.endswith(b"\r"):
                        raw = raw[:-1]
                    if not raw.strip():
                        continue
                if not block.raws:
                    block.first_index = index
                block.numbers.append(number)
                block.raws.append(raw)
                index += 1
                continue
            if raw is None:
                out.append((number, index, Refusal("line", "line_too_long", f"一行超过 {MAX_LINE} 字节"), None))
                index += 1
                continue
            if raw.endswith(b"\r"):
                raw = raw[:-1]
            if fmt is None:
                if number == 1 and raw.startswith(BOM):
                    raw = raw[len(BOM):]
                stripped = raw.strip()
                if not stripped:
                    continue
                if stripped.startswith(b"["):
                    raise Invalid("JSON 数组请以 application/json 发送（不超过 64 MiB）；大文件请用 NDJSON、CSV 或 TXT。",
                                  code="feed_format")
                if stripped.startswith(b"{"):
                    fmt = "ndjson"
                else:
                    fmt = "tsv" if b"\t" in raw else "csv"
                    text = _text(raw)
                    if text is None:
                        raise Invalid("表头不是 UTF-8 或 GB18030 文本。", code="invalid_text")
                    headings = [h.strip().strip("\ufeff").lower() for h in _split(text, fmt)]
                    if "setl_id" not in headings:
                        raise Invalid("文件第 1 行应是表头（国家医保平台字段名，如 setl_id、certno、medfee_sumamt）。",
                                      code="feed_headings_missing",
                                      errors=[{"loc": ["file", "line 1"], "msg": "缺少 setl_id 列",
                                               "code": "feed_headings_missing"}])
                    repeated = sorted({h for h in headings if h and headings.count(h) > 1})
                    if repeated:  # which column would a record take? Neither: the file is refused whole
                        raise Invalid(f"表头中有重复的列：{'、'.join(repeated)[:200]}。", code="feed_headings_repeated",
                                      errors=[{"loc": ["file", "line 1"], "msg": f"重复的列：{h}",
                                               "code": "feed_headings_repeated"} for h in repeated[:20]])
                    continue
            if not raw.strip():
                continue
            if fmt == "ndjson":
                block = Lines([number], [raw], index)
                index += 1
                continue
            record, stored = _row_record(raw, fmt, headings)
            out.append((number, index, record, stored))
            index += 1
        if out:
            yield out
        if len(block) >= BLOCK:
            yield block
            block = Lines([], [], index)
    if len(block):
        yield block


def _split(text: str, fmt: str) -> list[str]:
    if fmt == "tsv":
        return text.split("\t")
    return next(csv.reader([text]))


def _row_record(raw: bytes, fmt: str, headings: list[str]) -> tuple[dict[str, Any] | Refusal, str | None]:
    text = _text(raw)
    if text is None:
        return Refusal("line", "invalid_text", "不是 UTF-8 或 GB18030 文本"), None
    if "\x00" in text:
        return Refusal("line", "invalid_text", "含有 NUL 字符，无法保存"), None
    cells = _split(text, fmt)
    if len(cells) > len(headings):
        return Refusal("line", "feed_columns", f"有 {len(cells)} 列，表头只有 {len(headings)} 列"), None
    record = {name: cell.strip() for name, cell in zip(headings, cells, strict=False) if cell.strip()}
    return record, json.dumps(record, ensure_ascii=False)


def array_records(body: bytes) -> list[Item]:
    """A JSON array (already checked whole by shared/guards.py): its items, numbered by index."""
    try:
        value = from_json(body, allow_inf_nan=False)
    except ValueError as exc:
        raise Invalid(f"不是有效的 JSON 数组：{str(exc)[:200]}", code="invalid_json") from None
    if not isinstance(value, list):
        raise Invalid("应为 JSON 数组（每项一条结算记录）。", code="invalid_json")
    out: list[Item] = []
    for index, item in enumerate(value):
        if isinstance(item, dict):
            out.append((None, index, item, json.dumps(item, ensure_ascii=False)))
        else:
            out.append((None, index, Refusal("record", "settlement_record_invalid", "每项应是一个 JSON 对象"), None))
    return out
