"""Payment batches (docs/API.md "Payments (8003)"): cut by one finance officer, released by another, the bank file
served only once released, and the bank's per-line results applied once each."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.payments import files, fund, instructions
from services.payments.models import IDEMPOTENCY, MESSAGING, Batch, BatchFile, Instruction
from shared.auth import Principal, require_fund_wide
from shared.db import driver_connection
from shared.deps import SessionDep
from shared.errors import Conflict, Forbidden, Invalid, NotFound, Problem, field_errors
from shared.events import TOPIC_PAYMENTS, PaymentBatchLinesReleased, PaymentBatchReleased, ReleasedLine
from shared.idempotency import idempotent
from shared.messaging import publish, publish_many
from shared.money import format_money
from shared.schemas import MoneyOut, problem_responses
from shared.vocab import BatchStatus

router = APIRouter(prefix="/api/v1", tags=["batches"])
FINANCE = ("finance",)
CHINA = timezone(timedelta(hours=8))  # banks execute on the Chinese calendar date
RELEASED = ("released", "settled")
# Lines named per payment.batch_lines_released event: a line is 140-185 bytes of JSON, so an event is 280-370 KB,
# far below the producer's max_request_size and the broker's message.max.bytes (1 MB each by default,
# shared/kafka.py sets neither).
LINES_PER_EVENT = 2000


class CutIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    format: Literal["pain001", "bank_csv"]


class ResultIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    instruction_id: str = Field(min_length=1, max_length=64)
    status: Literal["paid", "failed"]
    reason: str = Field(default="", max_length=200)


RESULTS = TypeAdapter(list[ResultIn])


class BatchOut(BaseModel):
    batch_id: str
    format: Literal["pain001", "bank_csv"]
    status: BatchStatus
    count: int
    total: MoneyOut
    execution_date: date
    cut_by: str | None
    cut_at: str
    released_by: str | None
    released_at: str | None
    voided_reason: str | None


class BatchCut(BaseModel):
    batch_id: str
    format: Literal["pain001", "bank_csv"]
    count: int
    total: MoneyOut
    status: BatchStatus
    sha256: str  # of the file, as validated at the cut


class AppliedLine(BaseModel):
    instruction_id: str
    status: Literal["paid", "failed"]
    reason: str | None = None


class IgnoredLine(BaseModel):
    model_config = ConfigDict(extra="allow")
    instruction_id: str
    reason: str  # unknown_instruction | not_in_batch | not_final | already_settled


class ResultsOut(BaseModel):
    batch_id: str
    batch_status: BatchStatus
    applied: list[AppliedLine]
    ignored: list[IgnoredLine]
    paid: int
    failed: int
    paid_total: MoneyOut


FILE_TYPES: dict[int | str, dict[str, Any]] = {200: {"description": "The bank file: ISO 20022 pain.001 XML or the bank's CSV, as a download",
                    "content": {"application/xml": {"schema": {"type": "string", "format": "binary"}},
                                "text/csv": {"schema": {"type": "string", "format": "binary"}}}}}


def batch_out(batch: Batch) -> dict[str, Any]:
    return {
        "batch_id": str(batch.id), "format": batch.format, "status": batch.status, "count": batch.count,
        "total": format_money(batch.total), "execution_date": batch.execution_date.isoformat(),
        "cut_by": batch.cut_by_name, "cut_at": batch.cut_at.isoformat(),
        "released_by": batch.released_by_name,
        "released_at": batch.released_at.isoformat() if batch.released_at else None,
        "voided_reason": batch.voided_reason,
    }


async def load_batch(session: AsyncSession, batch_id: uuid.UUID, *, lock: bool = False) -> Batch:
    batch = await session.get(Batch, batch_id, with_for_update=lock)
    if batch is None:
        raise NotFound("付款批次不存在。", code="batch_not_found")
    return batch


@router.post("/payment-batches", status_code=201, response_model=BatchCut,
             responses=problem_responses(403, 409, 500))
@idempotent(IDEMPOTENCY, status=201)
async def cut_batch(request: Request, body: CutIn, session: SessionDep,
                    actor: Annotated[Principal, require_fund_wide(*FINANCE)]) -> dict[str, Any]:
    """Every pending instruction with complete payee details goes into one new, immutable batch."""
    settings = request.app.state.settings
    if not fund.configured(settings):
        raise Problem("未配置基金付款账户（PAYMENTS_FUND_ACCOUNT），不能生成付款文件。",
                      code="fund_account_not_configured", title="付款账户未配置", status=500)
    batch_id = uuid.uuid4()
    now = datetime.now(CHINA)
    # SKIP LOCKED: two officers cutting at once each get a disjoint set, never the same line twice. Lines
    # whose payee details have not arrived yet stay pending for a later cut. One statement, its rows in file
    # order, read straight from asyncpg (issue 15: through the ORM's result rows, reading 100,000 of them and
    # sorting them in Python took longer than the UPDATE itself).
    raw = await driver_connection(session)
    returned = await raw.fetch(
        "WITH picked AS (SELECT id FROM payment_instructions WHERE status = 'pending' AND batch_id IS NULL"
        " AND account IS NOT NULL AND payee_name IS NOT NULL AND bank_name IS NOT NULL"
        " ORDER BY created_at, id FOR UPDATE SKIP LOCKED), "
        "cut AS (UPDATE payment_instructions p SET status = 'batched', batch_id = $1 FROM picked"
        " WHERE p.id = picked.id RETURNING p.id, p.created_at, p.amount, p.payee_name, p.account, p.bank_name) "
        "SELECT id::text, amount, payee_name, account, bank_name FROM cut ORDER BY created_at, id", batch_id)
    if not returned:
        raise Conflict("没有可以出批的待支付指令。", code="nothing_to_cut")
    lines = list(map(files.Line._make, returned))  # the columns in Line's order
    del returned
    count, total = files.control(lines)
    try:
        built = files.build_and_validate(body.format, str(batch_id), now, now.date(), fund.debtor(settings), lines)
    except files.FileInvalid as exc:
        # Never serve, never store an invalid file: the whole cut is rolled back, the lines stay pending.
        raise Problem("生成的付款文件未通过格式校验，批次未生成，请联系系统管理员。", code="file_invalid",
                      title="付款文件无效", status=500,
                      errors=[{"loc": ["file"], "msg": problem} for problem in exc.problems]) from None
    del lines
    session.add(Batch(id=batch_id, format=body.format, status="awaiting_release", count=count, total=total,
                      execution_date=now.date(), cut_by=actor.user_id, cut_by_name=actor.username,
                      cut_at=now.astimezone(UTC)))
    await session.flush()
    session.add(BatchFile(batch_id=batch_id, filename=built.filename, media_type=built.media_type,
                          sha256=built.sha256, content=built.content))
    await session.flush()
    return {"batch_id": str(batch_id), "format": body.format, "count": count, "total": format_money(total),
            "status": "awaiting_release", "sha256": built.sha256}


@router.get("/payment-batches", response_model=list[BatchOut], responses=problem_responses(403))
async def list_batches(session: SessionDep, _: Annotated[Principal, require_fund_wide(*FINANCE)],
                       status: str | None = None) -> list[dict[str, Any]]:
    stmt = select(Batch).order_by(Batch.cut_at.desc()).limit(200)
    if status:
        stmt = stmt.where(Batch.status == status)
    return [batch_out(b) for b in (await session.execute(stmt)).scalars().all()]


@router.get("/payment-batches/{batch_id}", response_model=BatchOut, responses=problem_responses(403, 404))
async def get_batch(batch_id: uuid.UUID, session: SessionDep,
                    _: Annotated[Principal, require_fund_wide(*FINANCE)]) -> dict[str, Any]:
    batch = await load_batch(session, batch_id)
    by_status = dict((await session.execute(select(Instruction.status, func.count()).where(
        Instruction.batch_id == batch_id).group_by(Instruction.status))).all())
    return {**batch_out(batch), "lines_by_status": by_status}


@router.post("/payment-batches/{batch_id}/release", response_model=BatchOut,
             responses=problem_responses(403, 404, 409))
async def release_batch(batch_id: uuid.UUID, session: SessionDep,
                        actor: Annotated[Principal, require_fund_wide(*FINANCE)]) -> dict[str, Any]:
    """Four eyes: the officer who cut a batch cannot release it (segregation of duties over the fund)."""
    batch = await load_batch(session, batch_id, lock=True)
    if batch.cut_by == actor.user_id:
        raise Forbidden("出批人不能放行自己出的批次，请由另一位财务人员放行。", code="same_person")
    if batch.status != "awaiting_release":
        raise Conflict(f"该批次状态为 {batch.status}，不能放行。", code="batch_not_awaiting_release")
    batch.status, batch.released_by, batch.released_by_name = "released", actor.user_id, actor.username
    batch.released_at = datetime.now(UTC)
    await publish(session, MESSAGING, TOPIC_PAYMENTS, PaymentBatchReleased(
        batch_id=str(batch.id), count=batch.count, total=batch.total, released_by=actor.username))
    await publish_many(session, MESSAGING, TOPIC_PAYMENTS, await released_lines(session, batch))
    return batch_out(batch)


async def released_lines(session: AsyncSession, batch: Batch) -> list[PaymentBatchLinesReleased]:
    """The batch's lines, in file order, as events of at most ``LINES_PER_EVENT`` lines each."""
    assert batch.released_at is not None
    raw = await driver_connection(session)
    rows = await raw.fetch("SELECT claim_id, id::text, attempt, adjustment_id FROM payment_instructions"
                           " WHERE batch_id = $1 ORDER BY created_at, id", batch.id)
    lines = [ReleasedLine(claim_id=claim_id, instruction_id=instruction_id, attempt=attempt,
                          adjustment_id=adjustment_id or None) for claim_id, instruction_id, attempt, adjustment_id in rows]
    del rows
    parts = max(1, -(-len(lines) // LINES_PER_EVENT))
    return [PaymentBatchLinesReleased(batch_id=str(batch.id), released_at=batch.released_at, part=n + 1,
                                      parts=parts, lines=lines[n * LINES_PER_EVENT:(n + 1) * LINES_PER_EVENT])
            for n in range(parts)]


@router.get("/payment-batches/{batch_id}/file", response_class=Response,
            responses={**FILE_TYPES, **problem_responses(403, 404, 409)})
async def batch_file(batch_id: uuid.UUID, session: SessionDep,
                     _: Annotated[Principal, require_fund_wide(*FINANCE)]) -> Response:
    """The file exactly as validated at the cut; only for a released batch (a file is money leaving)."""
    batch = await load_batch(session, batch_id)
    if batch.status not in RELEASED:
        raise Conflict("批次尚未放行，不能下载付款文件。", code="batch_not_released")
    stored = await session.get(BatchFile, batch_id)
    if stored is None or files.sha256(stored.content) != stored.sha256:
        raise Problem("付款文件与出批时校验的文件不一致，已拒绝提供。", code="file_invalid", title="付款文件无效",
                      status=500)
    return Response(stored.content, media_type=stored.media_type, headers={
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(stored.filename)}",
        "X-Content-SHA256": stored.sha256, "X-Batch-Count": str(batch.count),
        "X-Batch-Control-Sum": format_money(batch.total)})


def _instruction_uuid(reference: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(reference.strip())
    except ValueError:
        return None


async def _read_results(request: Request) -> list[tuple[str, str, str]]:
    body = await request.body()
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type in ("application/xml", "text/xml") or body.lstrip().startswith(b"<"):
        try:
            return [(r.reference, r.status, r.reason) for r in files.parse_pain002(body)]
        except files.FileInvalid as exc:
            raise Invalid("银行结果文件不是有效的 pain.002.001.12 报文。", code="result_file_invalid",
                          errors=[{"loc": ["body"], "msg": p} for p in exc.problems]) from None
    try:
        parsed = RESULTS.validate_python(json.loads(body or b"null"))
    except json.JSONDecodeError:
        raise Invalid("请求体不是有效的 JSON。", code="validation_failed",
                      errors=[{"loc": ["body"], "msg": "不是有效的 JSON"}]) from None
    except ValidationError as exc:
        raise Invalid("银行结果不符合要求，请按 errors 逐项修改。",
                      errors=field_errors([{**e, "loc": ("body", *e["loc"])} for e in exc.errors()])) from None
    return [(r.instruction_id, r.status, r.reason) for r in parsed]


@router.post("/payment-batches/{batch_id}/results", response_model=ResultsOut,
             responses=problem_responses(403, 404, 409, 415))
async def record_results(batch_id: uuid.UUID, request: Request, session: SessionDep,
                         _: Annotated[Principal, require_fund_wide(*FINANCE)]) -> dict[str, Any]:
    """The bank's per-line results, JSON ``[{instruction_id, status, reason}]`` or a pain.002 report. Each line
    is applied once: a line already settled, unknown, or of another batch is reported in ``ignored``."""
    results = await _read_results(request)
    hold = timedelta(days=request.app.state.settings.account_change_hold_days)
    batch = await load_batch(session, batch_id, lock=True)  # one results upload per batch at a time
    if batch.status not in RELEASED:
        raise Conflict("批次尚未放行，不能登记银行结果。", code="batch_not_released")
    ids = {i for i in (_instruction_uuid(ref) for ref, _, _ in results) if i is not None}
    found = {i.id: i for i in (await session.execute(select(Instruction).where(
        Instruction.id.in_(ids)).with_for_update())).scalars().all()} if ids else {}
    applied: list[dict[str, Any]] = []
    ignored: list[dict[str, Any]] = []
    for reference, status, reason in results:
        instruction_id = _instruction_uuid(reference)
        instruction = found.get(instruction_id) if instruction_id else None
        if instruction is None:
            ignored.append({"instruction_id": reference, "reason": "unknown_instruction"})
        elif instruction.batch_id != batch.id:
            ignored.append({"instruction_id": reference, "reason": "not_in_batch"})
        elif status == "not_final":
            ignored.append({"instruction_id": reference, "reason": "not_final"})
        elif instruction.status != "batched":
            ignored.append({"instruction_id": reference, "reason": "already_settled",
                            "status": instruction.status})
        elif status == "paid":
            await instructions.settle_paid(session, instruction)
            applied.append({"instruction_id": reference, "status": "paid"})
        else:
            text_ = await instructions.settle_failed(session, instruction, reason, hold)
            applied.append({"instruction_id": reference, "status": "failed", "reason": text_})
        await session.flush()
    open_lines = (await session.execute(select(func.count()).select_from(Instruction).where(
        Instruction.batch_id == batch.id, Instruction.status == "batched"))).scalar_one()
    if open_lines == 0:
        batch.status = "settled"
    return {"batch_id": str(batch.id), "batch_status": batch.status, "applied": applied, "ignored": ignored,
            "paid": sum(1 for a in applied if a["status"] == "paid"),
            "failed": sum(1 for a in applied if a["status"] == "failed"),
            "paid_total": format_money(sum((found[_instruction_uuid(a["instruction_id"])].amount  # type: ignore[index]
                                            for a in applied if a["status"] == "paid"), Decimal("0.00")))}
