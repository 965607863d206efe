"""Claims' HTTP endpoints (docs/API.md "Claims (8002)"): each parses, calls one function of
``services.claims.service`` (commands) or ``services.claims.queries`` (work lists) and returns a response model.
The bureau feed and reversals live in ``services.claims.settlements``."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from services.claims import queries, service
from services.claims.domain.approval import Decision
from services.claims.models import IDEMPOTENCY
from services.claims.queries import MAX_LIMIT, ClaimFilters
from services.claims.repository import load_claim
from services.claims.schemas import (
    ClaimIn,
    ClaimListItem,
    ClaimOut,
    ClaimSubmittedOut,
    CoverageOut,
    DecisionIn,
    NoteIn,
    ReasonIn,
    ReviewItemOut,
    check_of,
    rejection_of,
)
from shared.auth import REVIEWER_LEVEL, CurrentUser, Principal, require_roles
from shared.deps import SessionDep
from shared.errors import Invalid
from shared.idempotency import idempotent
from shared.schemas import Page, problem_responses
from shared.vocab import ClaimStatus, OrgLevel, Role

router = APIRouter(prefix="/api/v1", tags=["claims"])

STAFF_AND_MEMBERS = (Role.UNIT_AGENT, Role.AGENCY_REVIEWER, Role.OFFICE_REVIEWER, Role.CENTRE_REVIEWER,
                     Role.FINANCE, Role.ADMIN, Role.MEMBER)


@router.post("/claims", status_code=201, response_model=ClaimSubmittedOut,
             responses=problem_responses(401, 403, 404, 409, 413, 422))
@idempotent(IDEMPOTENCY, status=201)
async def submit_claim(request: Request, body: ClaimIn, session: SessionDep,
                       actor: Annotated[Principal, require_roles(Role.UNIT_AGENT, Role.MEMBER, Role.ADMIN)]
                       ) -> ClaimSubmittedOut:
    claim = await service.submit(session, request.app.state.db, request.app.state.settings.reference_grace_seconds,
                                 body, actor)
    return ClaimSubmittedOut(claim_id=str(claim.id), status=ClaimStatus(claim.status), aid_amount=claim.aid_amount,
                             rejection=rejection_of(claim), settlement_check=check_of(claim))


EARLIEST_DAY, LATEST_DAY = date(1900, 1, 1), date(9998, 12, 31)
# A calendar day in a query, exactly YYYY-MM-DD (never a number read as a timestamp).
IsoDate = Annotated[str | None, Query(pattern=r"^\d{4}-\d{2}-\d{2}$", examples=["2026-11-23"])]


def day(name: str, value: str | None) -> date | None:
    if value is None:
        return None
    try:
        parsed = date.fromisoformat(value)
    except ValueError:
        raise Invalid(f"{name} 不是有效日期：{value}。", errors=[{"loc": ["query", name], "msg": "不是有效日期"}]) from None
    if not EARLIEST_DAY <= parsed <= LATEST_DAY:  # year 0001 or 9999 has no start or end in the service's zone
        raise Invalid(f"{name} 应在 {EARLIEST_DAY} 至 {LATEST_DAY} 之间：{value}。",
                      errors=[{"loc": ["query", name], "msg": "日期超出范围"}])
    return parsed


class ClaimQuery:
    """The filters of the claim list and its CSV (issue #10)."""

    def __init__(self, status: ClaimStatus | None = None, level: OrgLevel | None = None,
                 period: Annotated[str | None, Query(max_length=50)] = None,
                 unit: Annotated[str | None, Query(max_length=50)] = None,
                 member_id: Annotated[str | None, Query(max_length=40)] = None,
                 plan: Annotated[str | None, Query(max_length=50)] = None,
                 submitted_from: IsoDate = None, submitted_to: IsoDate = None) -> None:
        self.filters = ClaimFilters(status=status, level=level, period=period, unit=unit, member_id=member_id,
                                    plan=plan, submitted_from=day("submitted_from", submitted_from),
                                    submitted_to=day("submitted_to", submitted_to))



@router.get("/claims", response_model=Page[ClaimListItem], responses=problem_responses(401, 403, 422))
async def list_claims(session: SessionDep, actor: Annotated[Principal, require_roles(*STAFF_AND_MEMBERS)],
                      query: Annotated[ClaimQuery, Depends()],
                      limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
                      cursor: Annotated[str | None, Query(max_length=200)] = None) -> Page[ClaimListItem]:
    """Claims in the caller's branch (a member: their own), newest first, filtered; pass ``next_cursor`` back
    as ``cursor`` for the next page. ID numbers are masked."""
    items, next_cursor = await queries.list_claims(session, actor, query.filters, limit, cursor)
    return Page[ClaimListItem](items=items, next_cursor=next_cursor)


CSV_COLUMNS = ("claim_id", "member_id", "certno_masked", "period", "plan", "status", "aid_amount", "current_level",
               "final_level", "due_date", "unit", "submitter_org", "setl_id", "discharge_date", "rejection_code",
               "submitted_at")
CSV_MEDIA_TYPE = "text/csv; charset=utf-8"


@router.get("/claims.csv", response_class=StreamingResponse,
            responses={200: {"content": {CSV_MEDIA_TYPE: {"schema": {"type": "string"}}},
                             "description": "申请清单 CSV（UTF-8 带 BOM，Excel 可直接打开）"},
                       **problem_responses(401, 403, 422)})
async def export_claims(request: Request, actor: Annotated[Principal, require_roles(*STAFF_AND_MEMBERS)],
                        query: Annotated[ClaimQuery, Depends()]) -> StreamingResponse:
    """The same list as ``GET /claims``, every page of it, as CSV for offices (streamed in chunks)."""
    db = request.app.state.db

    async def rows() -> AsyncIterator[str]:
        yield "\ufeff"  # Excel reads UTF-8 only with the byte-order mark
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(CSV_COLUMNS)
        async with db.transaction() as session:
            async for item in queries.stream_claims(session, actor, query.filters):
                data = item.model_dump(mode="json")
                writer.writerow(["" if data[c] is None else data[c] for c in CSV_COLUMNS])
                if buffer.tell() > 64 * 1024:
                    yield buffer.getvalue()
                    buffer.seek(0)
                    buffer.truncate()
        yield buffer.getvalue()

    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return StreamingResponse(rows(), media_type=CSV_MEDIA_TYPE,
                             headers={"Content-Disposition": f'attachment; filename="claims-{stamp}.csv"'})


@router.get("/claims/{claim_id}", response_model=ClaimOut, responses=problem_responses(401, 403, 404, 422))
async def get_claim(claim_id: uuid.UUID, session: SessionDep, actor: CurrentUser) -> ClaimOut:
    return await service.claim_view(session, await load_claim(session, claim_id, actor))


@router.get("/review-queue", response_model=list[ReviewItemOut], responses=problem_responses(401, 403))
async def review_queue(session: SessionDep, actor: Annotated[Principal, require_roles(*REVIEWER_LEVEL)]
                       ) -> list[ReviewItemOut]:
    """Claims waiting at the caller's level in its branch, oldest first (第十条)."""
    return await queries.review_queue(session, actor, datetime.now(UTC))


@router.post("/claims/{claim_id}/decisions", response_model=ClaimOut,
             responses=problem_responses(401, 403, 404, 409, 422))
@idempotent(IDEMPOTENCY)
async def decide(request: Request, claim_id: uuid.UUID, body: DecisionIn, session: SessionDep,
                 actor: Annotated[Principal, require_roles(*REVIEWER_LEVEL)]) -> ClaimOut:
    decision = Decision(body.decision, body.reason, body.reason_code)
    return await service.view_of(session, *await service.decide_claim(session, claim_id, actor, decision,
                                                                      body.exclusions_checklist))


@router.post("/claims/{claim_id}/resubmission", response_model=ClaimOut,
             responses=problem_responses(401, 403, 404, 409, 422))
@idempotent(IDEMPOTENCY)
async def resubmit(request: Request, claim_id: uuid.UUID, body: NoteIn, session: SessionDep,
                   actor: Annotated[Principal, require_roles(Role.UNIT_AGENT)]) -> ClaimOut:
    decision = Decision("resubmit", body.note)
    return await service.view_of(session, *await service.decide_claim(session, claim_id, actor, decision))


@router.post("/claims/{claim_id}/revocation", response_model=ClaimOut,
             responses=problem_responses(401, 403, 404, 409, 422))
@idempotent(IDEMPOTENCY)
async def revoke(request: Request, claim_id: uuid.UUID, body: ReasonIn, session: SessionDep,
                 actor: Annotated[Principal, require_roles(Role.CENTRE_REVIEWER)]) -> ClaimOut:
    """第十三条: fraud revokes the claim and asks payments to claw back what was paid."""
    decision = Decision("revoke", body.reason)
    return await service.view_of(session, *await service.decide_claim(session, claim_id, actor, decision))


@router.get("/coverages", response_model=list[CoverageOut], responses=problem_responses(401, 403, 422))
async def coverages(session: SessionDep, actor: Annotated[Principal, require_roles(
        Role.UNIT_AGENT, Role.AGENCY_REVIEWER, Role.OFFICE_REVIEWER, Role.CENTRE_REVIEWER, Role.ADMIN)],
        certno: str | None = None, member_id: str | None = None) -> list[CoverageOut]:
    """What claims knows of a person's coverage (its copy of enrollment's events), within the caller's branch."""
    return await queries.coverages(session, actor, certno, member_id)
