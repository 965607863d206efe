"""The members of a period run before this system: ``POST /api/v1/periods/{code}/history`` (admin, audited).

At go-live the previous period ran on paper, yet renewal fees (seed 003 第四条: 120 for members of the 17th
period, 150 for new ones), the retiree rule (第一条) and loyalty (第十五条) all ask who was covered in it. The
centre imports that period's list once (JSON, or a CSV/XLSX file with Chinese headings, read by the roster
file reader); from then on ``coverage.py`` counts these people as covered in that period.

The import is refused whole, every problem named by row; it is idempotent (one record per person and period;
importing again adds the new people, changes what changed, audited per person, and leaves the rest); it
only adds (lists arrive per office: a later file does not remove the people of an earlier one). Rows go to
PostgreSQL by ``COPY`` into a temporary table and then one statement each for the audit and the upsert.

Each import publishes ``period.history_recorded`` with the ID numbers it holds (in chunks): claims has no claims
on a period run on paper, but counts it in a member's years of participation for second aid (seed 000).
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.enrollment.domain.history_rows import HistoryRow, HistoryTable, check_history, row_error
from services.enrollment.domain.roster_files import parse_table_file
from services.enrollment.domain.roster_rules import stored_certno
from services.enrollment.models import MESSAGING, AuditEntry
from services.enrollment.service import load_period
from shared.auth import Principal, require_roles
from shared.db import driver_connection, utcnow
from shared.deps import SessionDep
from shared.errors import Conflict, Invalid, field_errors
from shared.events import TOPIC_ENROLLMENT, PeriodHistoryRecorded
from shared.messaging import publish_many
from shared.rulebook import Rulebook

router = APIRouter(prefix="/api/v1", tags=["periods"])


class HistoryMemberIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    certno: str = Field(max_length=18)
    unit: str = Field(max_length=50)
    member_type: Literal["in_service", "retired"]
    aid_received: StrictBool


class HistoryIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    members: list[HistoryMemberIn]


class _HistoryBody(BaseModel):
    """The body's shape only: each row is then checked on its own, so every bad row is named at once."""

    model_config = ConfigDict(extra="forbid")
    members: list[Any]


class HistoryImported(BaseModel):
    period: str
    members: int = Field(description="rows in this import")
    added: int = Field(description="people not recorded in the period before")
    updated: int = Field(description="people whose unit, member type or aid received changed (audited)")
    unchanged: int


FILE_FORM = {"type": "object", "required": ["file"], "properties": {"file": {
    "type": "string", "format": "binary",
    "description": "CSV or XLSX with the headings 身份证号码, 单位代码, 人员类别 (在职/退休), 是否获得补助 (是/否)"}}}


@router.post("/periods/{code}/history", response_model=HistoryImported, openapi_extra={"requestBody": {"content": {
    "application/json": {"schema": HistoryIn.model_json_schema()}, "multipart/form-data": {"schema": FILE_FORM}}}})
async def import_history(code: str, request: Request, session: SessionDep,
                         actor: Annotated[Principal, require_roles("admin")]) -> HistoryImported:
    """Record who was covered in a past period (its enrolment window closed) and whether they received aid,
    from a JSON body ``{"members": [{certno, unit, member_type, aid_received}]}`` or a CSV/XLSX ``file``.
    A period whose rulebook names this one as ``previous_period`` then charges renewal fees, applies the
    retiree rule and counts loyalty from it."""
    rulebook = await load_period(session, code)
    window = rulebook.windows.enrolment
    if date.today() <= window.to:
        raise Conflict(f"互助期 {code} 的登记期至 {window.to} 才结束：往期名单只能导入登记期已结束的期，本期人员请提交名单。",
                       code="period_not_past")
    rows, errors, source = await read_history(request)
    return await store_history(session, rulebook, rows, errors, actor=actor, source=source)


async def read_history(request: Request) -> tuple[list[HistoryRow], list[dict[str, Any]], str]:
    """The rows read well, the problems of the others, and where they came from (for the audit)."""
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        form = await request.form()
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise Invalid("请上传往期参互名单文件（CSV 或 XLSX）。", code="file_required",
                          errors=[{"loc": ["body", "file"], "msg": "缺少必填项", "code": "file_required"}])
        parsed = await asyncio.to_thread(parse_table_file, upload.filename or "", upload.content_type,
                                         await upload.read(), HistoryTable)
        return parsed.members, parsed.errors, f"file:{upload.filename or ''}"
    # 100,000 rows take a while to validate: off the event loop, as a file's parsing.
    rows, errors = await asyncio.to_thread(parse_history_json, await request.body())
    return rows, errors, "json"


def parse_history_json(data: bytes) -> tuple[list[HistoryRow], list[dict[str, Any]]]:
    """A JSON body's rows; each row is validated on its own, so every bad row is named at once."""
    try:
        body = _HistoryBody.model_validate_json(data)
    except ValidationError as exc:
        raise Invalid("往期参互名单数据不符合要求，请按 errors 逐项修改。", code="history_rejected",
                      errors=json_errors(exc)) from None
    if not body.members:
        raise Invalid("往期参互名单为空。", code="history_rejected",
                      errors=[{"loc": ["members"], "msg": "名单为空。", "code": "empty_roster"}])
    rows: list[HistoryRow] = []
    errors: list[dict[str, Any]] = []
    for index, item in enumerate(body.members):
        try:
            m = HistoryMemberIn.model_validate(item)
        except ValidationError as exc:
            errors += json_errors(exc, index)
            continue
        rows.append(HistoryRow(stored_certno(m.certno.strip().upper()), m.unit.strip(), m.member_type, m.aid_received, index))
    return rows, errors


JSON_FIELDS = {"certno": ("身份证号码必须是文本（18 位）。", "invalid_certno"),
               "unit": ("单位代码必须是文本（最长 50 个字符）。", "invalid_unit"),
               "member_type": ("人员类别必须是 in_service（在职）或 retired（退休）。", "invalid_member_type"),
               "aid_received": ("是否获得补助必须是 true 或 false。", "invalid_aid_received")}


def json_errors(exc: ValidationError, index: int | None = None) -> list[dict[str, Any]]:
    """Pydantic's errors; those of row ``index`` as ``["members", index, field]`` and 第N条 (N = index + 1)."""
    out: list[dict[str, Any]] = []
    for err, shown in zip(exc.errors(), field_errors(list(exc.errors())), strict=True):
        loc = err["loc"]
        if index is None:
            out.append({"loc": ["body", *loc], "msg": shown["msg"], "code": "invalid_body"})
        elif loc and loc[0] in JSON_FIELDS:
            msg, code = JSON_FIELDS[str(loc[0])]
            if err["type"] == "missing":
                msg, code = f"缺少 {loc[0]}。", "missing_field"
            out.append(row_error(index, 0, str(loc[0]), msg, code))
        else:  # not an object, or a field it does not know
            out.append(row_error(index, 0, str(loc[0]) if loc else "", shown["msg"], "invalid_field"))
    return out


def _row_order(error: dict[str, Any]) -> tuple[int, int]:
    loc = error["loc"]
    return (1, loc[1]) if len(loc) > 1 and isinstance(loc[1], int) else (0, 0)


async def store_history(session: AsyncSession, rulebook: Rulebook, rows: list[HistoryRow],
                        read_errors: list[dict[str, Any]], *, actor: Principal, source: str) -> HistoryImported:
    """Check every row, then store them all in the caller's transaction; raise Invalid (nothing stored)."""
    known_units = set((await session.execute(text(
        "SELECT code FROM orgs WHERE level = 'unit' AND code = ANY(:codes)"),
        {"codes": sorted({r.unit for r in rows})})).scalars())
    period = rulebook.code
    raw = await driver_connection(session)
    # PostgreSQL takes the rows into a temporary table (dropped at commit or rollback) while this process
    # checks them in a thread; nothing reaches period_history unless every check passed.
    await raw.execute("CREATE TEMP TABLE history_import (certno varchar(18), unit varchar(50), "
                      "member_type varchar(20), aid_received boolean) ON COMMIT DROP")
    loading = asyncio.create_task(raw.copy_records_to_table(
        "history_import", records=[(r.certno, r.unit, r.member_type, r.aid_received) for r in rows],
        columns=["certno", "unit", "member_type", "aid_received"]))
    errors = await asyncio.to_thread(check_history, rows, member_types=rulebook.enrolment.member_types,
                                     units=known_units)
    with contextlib.suppress(Exception) if errors or read_errors else contextlib.nullcontext():
        await loading
    if errors or read_errors:
        errors = sorted(read_errors + errors, key=_row_order)
        raise Invalid(f"往期参互名单有 {len(errors)} 处问题，整份未导入，请逐行修改后重新提交。",
                      code="history_rejected", errors=errors)
    # Each person whose record changes gets an audit entry with the values before and after, stamped by the clock
    # of every other audit entry (AuditEntry.at), not by now(), the start of the transaction.
    changed = await raw.execute(
        "INSERT INTO audit_log (id, actor, action, subject, detail, at) "
        "SELECT gen_random_uuid(), $1, 'period.history_change', $2, jsonb_build_object('certno', i.certno, "
        "  'before', jsonb_build_object('unit', h.unit, 'member_type', h.member_type, 'aid_received', h.aid_received), "
        "  'after', jsonb_build_object('unit', i.unit, 'member_type', i.member_type, 'aid_received', i.aid_received)), "
        "  $3 "
        "FROM history_import i JOIN period_history h ON h.period = $2 AND h.certno = i.certno "
        "WHERE (h.unit, h.member_type, h.aid_received) IS DISTINCT FROM (i.unit, i.member_type, i.aid_received)",
        actor.username, period, utcnow())
    written = await raw.execute(
        "INSERT INTO period_history (period, certno, unit, member_type, aid_received, recorded_by, recorded_at) "
        "SELECT $1, certno, unit, member_type, aid_received, $2, now() FROM history_import "
        "ON CONFLICT (period, certno) DO UPDATE SET unit = EXCLUDED.unit, member_type = EXCLUDED.member_type, "
        "  aid_received = EXCLUDED.aid_received, recorded_by = EXCLUDED.recorded_by, recorded_at = EXCLUDED.recorded_at "
        "WHERE (period_history.unit, period_history.member_type, period_history.aid_received) "
        "  IS DISTINCT FROM (EXCLUDED.unit, EXCLUDED.member_type, EXCLUDED.aid_received)",
        period, actor.username)
    # Dropped once read, not only at commit: the caller's transaction may import again (a test's rolled-back one).
    await raw.execute("DROP TABLE history_import")
    updated = _count(changed)
    added = _count(written) - updated
    result = HistoryImported(period=period, members=len(rows), added=added, updated=updated,
                             unchanged=len(rows) - added - updated)
    session.add(AuditEntry(actor=actor.username, action="period.history_import", subject=period,
                           detail={"source": source, **result.model_dump(exclude={"period"})}))
    certnos = sorted({r.certno for r in rows})
    await publish_many(session, MESSAGING, TOPIC_ENROLLMENT, [
        PeriodHistoryRecorded(period=period, certnos=certnos[i:i + HISTORY_EVENT_SIZE])
        for i in range(0, len(certnos), HISTORY_EVENT_SIZE)])
    await session.flush()
    return result


#: ID numbers per period.history_recorded event (about 100 KB, well inside the broker's message size).
HISTORY_EVENT_SIZE = 5000


def _count(status: str) -> int:
    """The row count of a command status such as ``INSERT 0 120``."""
    return int(status.rsplit(" ", 1)[-1])
