"""The bureau's settlement records (docs/API.md "Settlements"): thin routes over service.py."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from services.claims.settlements import service
from services.claims.settlements.reading import Item, array_records, records
from shared.auth import Principal, require_roles
from shared.deps import SessionDep
from shared.schemas import problem_responses

router = APIRouter(prefix="/api/v1")


class FeedRejection(BaseModel):
    line: int | None = Field(description="物理行号（从 1 起；CSV/TXT 的表头是第 1 行）；JSON 数组为 null")
    index: int = Field(description="第几条记录（从 0 起）")
    field: str = Field(description="出错的字段（整行无法读取时为 line）")
    code: str
    reason: str
    errors: list[dict[str, Any]] = []


class FeedResult(BaseModel):
    received: int
    accepted: int
    duplicates: int
    not_members: int = Field(description="不是发送方所辖参互人员的记录：只计数，不保存")
    outside_branch: int = Field(description="同 not_members（旧名，保留兼容）")
    reversals: int
    claims_reversed: list[str]
    rejected_count: int = Field(description="被拒记录总数；rejected 只列出前 1000 条")
    rejected: list[FeedRejection]


async def _body_items(request: Request) -> AsyncIterator[list[Item]]:
    content_type = request.headers.get("content-type", "")
    kind = content_type.split(";")[0].strip().lower()
    if kind in ("application/json", "") or kind.endswith("+json"):
        body = await request.body()  # read whole by the guard already (at most 64 MiB)
        if body.lstrip().startswith(b"["):
            yield array_records(body)
            return

        async def once() -> AsyncIterator[bytes]:
            yield body

        async for batch in records("application/x-ndjson", once()):
            yield batch
        return
    async for batch in records(content_type, request.stream()):
        yield batch


@router.post("/settlements", tags=["settlements"], response_model=FeedResult,
             responses=problem_responses(403, 413, 422))
async def receive_settlements(request: Request, session: SessionDep,
                              actor: Annotated[Principal, require_roles("bureau", "admin")]) -> FeedResult:
    """Settlement records from a medical-insurance bureau: a JSON array, NDJSON (``application/x-ndjson``), or
    a multipart ``file`` (NDJSON, CSV or tab-separated TXT with the national field names as headings, gzip or
    not), read as a stream. Each record is checked (services/claims/domain/feed.py): a bad one is listed with
    its line, field and code; a sound one is kept if the person is covered in the caller's branch (anyone
    else's is counted in ``not_members`` and dropped, never stored); one already kept counts as a duplicate."""
    tally = await service.ingest(session, actor, _body_items(request))
    return FeedResult(received=tally.received, accepted=tally.accepted, duplicates=tally.duplicates,
                      not_members=tally.not_members, outside_branch=tally.not_members, reversals=tally.reversals,
                      claims_reversed=tally.claims_reversed, rejected_count=tally.rejected_total,
                      rejected=[FeedRejection(**r) for r in tally.rejected])
