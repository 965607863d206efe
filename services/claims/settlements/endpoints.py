"""The bureau's settlement records (docs/API.md "Settlements"): thin routes over service.py."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, BeforeValidator, Field

from services.claims.settlements import service
from services.claims.settlements.reading import Item, Lines, array_records, records
from shared.auth import Principal, require_roles
from shared.deps import SessionDep
from shared.fields import Money, PastDate, Text
from shared.money import format_money
from shared.schemas import MoneyOut, Page, problem_responses

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
    claims_checked: list[str] = Field(default=[], description="先于结算数据提交、现已按医保数据核对并重新核定的申请")
    claims_made: int = Field(default=0, description="按 auto_claim（免申即享）由结算数据直接生成的申请数")
    rejected_count: int = Field(description="被拒记录总数；rejected 只列出前 1000 条")
    rejected: list[FeedRejection]


async def _body_items(request: Request) -> AsyncIterator[list[Item] | Lines]:
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
                      claims_reversed=tally.claims_reversed, claims_checked=tally.claims.claims_checked,
                      claims_made=len(tally.claims.claims_made), rejected_count=tally.rejected_total,
                      rejected=[FeedRejection(**r) for r in tally.rejected])


# --- unclaimed (issue #12 item 4) ---------------------------------------------------------------------------
class UnclaimedSettlement(BaseModel):
    setl_id: str
    member_id: str
    period: str
    unit: str
    name: str = Field(description="脱敏：姓氏加星号")
    certno: str = Field(description="脱敏身份证号")
    insutype: str | None
    med_type: str | None
    setl_date: date | None
    begndate: str | None
    enddate: str | None
    medfee_sumamt: MoneyOut | None
    psn_part_amt: MoneyOut | None
    exclusion: str | None = Field(description="记录本身显示的第十二条不予补助情形（如 excluded_maternity），无则 null")


@router.get("/settlements/unclaimed", tags=["settlements"], response_model=Page[UnclaimedSettlement],
            responses=problem_responses(403, 422))
async def unclaimed_settlements(
        session: SessionDep,
        actor: Annotated[Principal, require_roles("admin", "centre_reviewer", "office_reviewer", "agency_reviewer",
                                                  "unit_agent")],
        period: Annotated[Text | None, Query(max_length=50)] = None,
        unit: Annotated[Text | None, Query(max_length=50)] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
        cursor: Annotated[Text | None, Query(max_length=60)] = None) -> Page[UnclaimedSettlement]:
    """The bureau's records of members covered in the caller's branch on which no claim has been made (the
    union calls the member, 第九条: aid is paid on the bureau's data). Personal data masked."""
    items, next_cursor = await service.unclaimed(session, actor, period=period, unit=unit, limit=limit,
                                                 cursor=cursor)
    return Page[UnclaimedSettlement](items=[UnclaimedSettlement(**i) for i in items], next_cursor=next_cursor)


# --- daily totals (issue #12 item 5) ------------------------------------------------------------------------
def _iso_day(value: object) -> object:
    """Only yyyy-MM-dd text is a day here (pydantic would read 0 as 1970-01-01)."""
    if isinstance(value, date) or (isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value)):
        return value
    raise ValueError("日期应为 yyyy-MM-dd")


SettledDay = Annotated[PastDate, BeforeValidator(_iso_day)]


class DailyTotalIn(BaseModel):
    date: SettledDay
    insutype: Annotated[str, Field(pattern=r"^\d{3}$")]
    count: Annotated[int, Field(ge=0, le=100_000_000)]
    medfee_sumamt: Money
    psn_part_amt: Money


class TotalsIn(BaseModel):
    totals: Annotated[list[DailyTotalIn], Field(min_length=1, max_length=1000)]


class TotalDifference(BaseModel):
    count: int | None = None
    medfee_sumamt: MoneyOut | None = None
    psn_part_amt: MoneyOut | None = None


class TotalResult(BaseModel):
    date: date
    insutype: str
    status: str = Field(description="matched 或 mismatch")
    bureau: dict[str, Any] = Field(description="医保部门报来的笔数与金额")
    received: dict[str, Any] = Field(description="已收到的合格明细（含非参互人员，只计数）")
    differences: TotalDifference = Field(description="医保部门的数减去已收到的数；一致时为空")


class TotalsResult(BaseModel):
    status: str = Field(description="全部一致为 matched，否则 mismatch")
    totals: list[TotalResult]


def _result(r: service.Reconciled) -> TotalResult:
    differences = r.differences
    return TotalResult(
        date=r.date, insutype=r.insutype, status="mismatch" if differences else "matched",
        bureau={"count": r.count, "medfee_sumamt": format_money(r.medfee_sumamt),
                "psn_part_amt": format_money(r.psn_part_amt)},
        received={"count": r.received_count, "medfee_sumamt": format_money(r.received_medfee_sumamt),
                  "psn_part_amt": format_money(r.received_psn_part_amt)},
        differences=TotalDifference(**differences))


def _results(rows: list[service.Reconciled]) -> TotalsResult:
    results = [_result(r) for r in rows]
    return TotalsResult(status="matched" if all(r.status == "matched" for r in results) else "mismatch",
                        totals=results)


@router.post("/settlements/totals", tags=["settlements"], response_model=TotalsResult,
             responses=problem_responses(403, 422))
async def receive_totals(body: TotalsIn, session: SessionDep,
                         actor: Annotated[Principal, require_roles("bureau", "admin")]) -> TotalsResult:
    """The bureau's daily totals (NHSA 3201 对总账): per day and insutype the count and the sums of medfee_sumamt
    and psn_part_amt of what it settled, compared with the detail it sent. A mismatch is resolved by sending the
    detail file again (3202 对明细): read the result back with GET."""
    totals = [service.DailyTotal(date=t.date, insutype=t.insutype, count=t.count, medfee_sumamt=t.medfee_sumamt,
                                 psn_part_amt=t.psn_part_amt) for t in body.totals]
    await service.record_totals(session, actor, totals)
    return _results(await service.reconcile(session, actor, sorted({t.date for t in totals})))


@router.get("/settlements/totals", tags=["settlements"], response_model=TotalsResult,
            responses=problem_responses(403, 422))
async def read_totals(date_: Annotated[SettledDay, Query(alias="date")], session: SessionDep,
                      actor: Annotated[Principal, require_roles("bureau", "admin")]) -> TotalsResult:
    """The totals the bureau sent for a day, compared again with what has been received since."""
    return _results(await service.reconcile(session, actor, [date_]))
