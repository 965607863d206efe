"""Enrollment's HTTP endpoints (docs/API.md "Enrollment (8001)"): each parses its input, checks the caller's role
and calls one function of service.py; the models it takes and returns are in schemas.py, the rules in domain/."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request

from services.enrollment import service
from services.enrollment.models import IDEMPOTENCY
from services.enrollment.schemas import (
    MemberOut,
    OrgIn,
    OrgOut,
    PaymentIn,
    PeriodOut,
    PeriodSummaryOut,
    RosterIn,
    RosterOut,
    RosterSubmitted,
    UserIn,
    UserOut,
)
from shared.auth import CurrentUser, Principal, require_fund_wide, require_roles
from shared.deps import SessionDep
from shared.idempotency import idempotent
from shared.schemas import problem_responses
from shared.vocab import Role

router = APIRouter(prefix="/api/v1")
ADMIN = require_roles(Role.ADMIN)


# --- organisations and staff -------------------------------------------------------------------------------
@router.post("/orgs", status_code=201, tags=["organisations"], response_model=OrgOut,
             responses=problem_responses(401, 403, 409, 422))
async def create_org(body: OrgIn, session: SessionDep, _: Annotated[Principal, ADMIN]) -> OrgOut:
    return await service.create_org(session, body)


@router.get("/orgs/{code}", tags=["organisations"], response_model=OrgOut,
            responses=problem_responses(401, 403, 404))
async def get_org(code: str, session: SessionDep, actor: CurrentUser) -> OrgOut:
    return await service.get_org(session, code, actor)


@router.post("/users", status_code=201, tags=["organisations"], response_model=UserOut,
             responses=problem_responses(401, 403, 409, 422))
async def create_user(body: UserIn, session: SessionDep, actor: Annotated[Principal, ADMIN]) -> UserOut:
    return await service.create_user(session, body, actor)


# --- periods ----------------------------------------------------------------------------------------------
RULEBOOK_BODY = {"requestBody": {"required": True, "content": {
    "application/yaml": {"schema": {"type": "object", "description": "规则书（YAML）"}},
    "application/json": {"schema": {"type": "object", "description": "规则书（JSON）"}}}}}


@router.post("/periods", status_code=201, tags=["periods"], response_model=PeriodOut, openapi_extra=RULEBOOK_BODY,
             responses=problem_responses(401, 403, 409, 422))
async def create_period(request: Request, session: SessionDep, actor: Annotated[Principal, ADMIN]) -> PeriodOut:
    """A new period with its rulebook (YAML or JSON body)."""
    return await service.create_period(session, await service.read_rulebook(request), actor)


@router.put("/periods/{code}/rulebook", tags=["periods"], response_model=PeriodOut, openapi_extra=RULEBOOK_BODY,
            responses=problem_responses(401, 403, 404, 409, 422))
async def correct_rulebook(code: str, request: Request, session: SessionDep, actor: Annotated[Principal, ADMIN],
                           reason: Annotated[str, Query(min_length=4, max_length=1000)]) -> PeriodOut:
    """A correction of a period's rules (the same code; a new revision), audited with its reason and published:
    claims re-assesses every member's stays in the period and records each difference as an adjustment."""
    return await service.correct_rulebook(session, code, await service.read_rulebook(request), reason, actor)


@router.get("/periods/{code}", tags=["periods"], response_model=PeriodOut, responses=problem_responses(401, 404))
async def get_period(code: str, session: SessionDep, _: CurrentUser) -> PeriodOut:
    return await service.get_period(session, code)


@router.get("/periods/{period}/summary", tags=["periods"], response_model=PeriodSummaryOut,
            responses=problem_responses(401, 403, 404))
async def period_summary(
    period: str, session: SessionDep,
    _: Annotated[Principal, require_fund_wide(Role.ADMIN, Role.FINANCE, Role.CENTRE_REVIEWER)],
) -> PeriodSummaryOut:
    return await service.period_summary(session, period)


# --- rosters ----------------------------------------------------------------------------------------------
@router.post("/periods/{period}/units/{unit}/rosters", status_code=201, tags=["rosters"],
             response_model=RosterSubmitted,
             responses=problem_responses(401, 403, 404, 409, 413, 415, 422),
             openapi_extra={"requestBody": {"content": {
                 "application/json": {"schema": RosterIn.model_json_schema()},
                 "multipart/form-data": {"schema": {"type": "object", "required": ["file"], "properties": {
                     "file": {"type": "string", "format": "binary", "description": "CSV or XLSX"},
                     "staff_total": {"type": "integer"}, "staff_in_service": {"type": "integer"},
                     "staff_basic_insured_in_service": {"type": "integer"}}}}}}})
@idempotent(IDEMPOTENCY, status=201)
async def submit_roster(
    request: Request, period: str, unit: str, session: SessionDep,
    actor: Annotated[Principal, require_roles(Role.UNIT_AGENT, Role.AGENCY_REVIEWER, Role.OFFICE_REVIEWER,
                                                Role.CENTRE_REVIEWER, Role.ADMIN)],
    late_reason: Annotated[str | None, Query(max_length=500)] = None,
) -> RosterSubmitted:
    """Submit a unit's roster as JSON, or as a CSV/XLSX file (multipart ``file`` plus the staff counts as form
    fields ``staff_total``, ``staff_in_service``, ``staff_basic_insured_in_service``). Checked whole against the
    period's rulebook and refused whole, every problem listed by row. Outside the enrolment window only an
    admin may enter one, with a reason that is audited (第五条 forbids late enrolment; the centre's back-entry
    of paper records is the exception)."""
    return await service.submit_roster(session, request, period, unit, actor, late_reason)


@router.get("/rosters/{roster_id}", tags=["rosters"], response_model=RosterOut,
            responses=problem_responses(401, 403, 404))
async def get_roster(roster_id: uuid.UUID, session: SessionDep, actor: CurrentUser) -> RosterOut:
    return await service.get_roster(session, roster_id, actor)


@router.post("/rosters/{roster_id}/payments", tags=["rosters"], response_model=RosterOut,
             responses=problem_responses(401, 403, 404, 409, 422))
@idempotent(IDEMPOTENCY)
async def pay_roster(
    request: Request, roster_id: uuid.UUID, body: PaymentIn, session: SessionDep,
    actor: Annotated[Principal, require_roles(Role.UNIT_AGENT, Role.FINANCE, Role.ADMIN)],
) -> RosterOut:
    """A payment to a roster as the bank shows it. Its bank date must lie within the enrolment window (第五条,
    for everyone, admin included); when the fees reach the total the members are covered from the day the
    rulebook's ``enrolment.cover_starts`` says."""
    return await service.pay_roster(session, roster_id, body, actor)


# --- members ----------------------------------------------------------------------------------------------
@router.get("/members", tags=["members"], response_model=list[MemberOut], responses=problem_responses(401, 422))
async def find_members(session: SessionDep, actor: CurrentUser,
                       certno: Annotated[str, Query(min_length=15, max_length=18)]) -> list[MemberOut]:
    """A person by ID number: 18 digits, or a 15-digit first-generation number (matched as its 18-digit form)."""
    return await service.find_members(session, certno, actor)


@router.get("/members/{member_id}", tags=["members"], response_model=MemberOut,
            responses=problem_responses(401, 403, 404))
async def get_member(member_id: uuid.UUID, session: SessionDep, actor: CurrentUser) -> MemberOut:
    return await service.get_member(session, member_id, actor)


