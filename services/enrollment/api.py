"""Enrollment's HTTP endpoints (docs/API.md "Enrollment (8001)"): thin, they parse, check rights and call rules."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date
from typing import Annotated, Any, Literal

from argon2 import PasswordHasher
from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import func, select, update

from services.enrollment.domain.fee_payments import cover_start, payment_date_problem
from services.enrollment.domain.roster_files import parse_roster_file
from services.enrollment.domain.roster_rules import RosterMember, Staff
from services.enrollment.loyalty import grant_loyalty
from services.enrollment.models import (
    IDEMPOTENCY,
    MESSAGING,
    AuditEntry,
    Enrolment,
    Member,
    Org,
    Period,
    Roster,
    RosterPayment,
    User,
)
from services.enrollment.rosters import store_roster
from shared import idnumber
from shared.auth import ROLES, CurrentUser, Principal, require_fund_wide, require_roles
from shared.deps import SessionDep
from shared.errors import Conflict, Forbidden, Invalid, NotFound, Problem, field_errors
from shared.events import TOPIC_ENROLLMENT, FeesReceived, MemberCovered, PeriodPublished
from shared.fields import PositiveMoney, SaneDate
from shared.idempotency import idempotent
from shared.masking import mask_account, mask_certno, mask_phone
from shared.messaging import publish, publish_many
from shared.money import format_money
from shared.rulebook import Rulebook, RulebookError, load_rulebook, parse_rulebook
from shared.vocab import ORG_LEVELS

router = APIRouter(prefix="/api/v1")
hasher = PasswordHasher()
MoneyStr = PositiveMoney


# --- login (the endpoints are in logins.py) ---------------------------------------------------------------
async def principal_of(session: SessionDep, user: User) -> Principal:
    org = await session.get(Org, user.org) if user.org else None
    return Principal(
        user_id=str(user.id), username=user.username, role=user.role, org=org.code if org else "",
        org_level=org.level if org else "", org_path=tuple(org.path) if org else (),
        member_id=str(user.member_id) if user.member_id else None,
    )


# --- organisations and staff -------------------------------------------------------------------------------
class OrgIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str = Field(min_length=1, max_length=50, pattern=r"^[A-Za-z0-9_.-]+$")
    name: str = Field(min_length=1, max_length=200)
    level: Literal["centre", "office", "agency_point", "unit"]
    parent: str | None = None


def org_out(org: Org) -> dict[str, Any]:
    return {"code": org.code, "name": org.name, "level": org.level, "parent": org.parent, "path": org.path}


@router.post("/orgs", status_code=201, tags=["organisations"])
async def create_org(body: OrgIn, session: SessionDep, _: Annotated[Principal, require_roles("admin")]) -> dict:
    if await session.get(Org, body.code) is not None:
        raise Conflict(f"组织代码 {body.code} 已存在。", code="org_exists")
    if body.level == "centre":
        if body.parent is not None:
            raise Invalid("互助中心是最高一级，不能有上级。", errors=[{"loc": ["body", "parent"], "msg": "必须为空"}])
        path = [body.code]
    else:
        parent = await session.get(Org, body.parent) if body.parent else None
        if parent is None:
            raise Invalid("上级组织不存在。", code="parent_not_found", errors=[{"loc": ["body", "parent"], "msg": "不存在"}])
        if ORG_LEVELS.index(body.level) != ORG_LEVELS.index(parent.level) + 1:
            raise Invalid(f"{body.level} 的上级必须是 {ORG_LEVELS[ORG_LEVELS.index(body.level) - 1]}。",
                          code="bad_parent_level", errors=[{"loc": ["body", "parent"], "msg": "上级层级不符"}])
        path = [*parent.path, body.code]
    org = Org(code=body.code, name=body.name, level=body.level, parent=body.parent, path=path)
    session.add(org)
    return org_out(org)


@router.get("/orgs/{code}", tags=["organisations"])
async def get_org(code: str, session: SessionDep, principal: CurrentUser) -> dict:
    org = await session.get(Org, code)
    if org is None:
        raise NotFound(f"组织 {code} 不存在。")
    if principal.role != "admin":
        principal.require_covers(org.path)
    return org_out(org)


class UserIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(min_length=3, max_length=100)
    password: str = Field(min_length=8, max_length=200)
    role: Literal[ROLES]  # type: ignore[valid-type]
    org: str | None = None
    member_id: uuid.UUID | None = None


ROLE_LEVEL = {"centre_reviewer": "centre", "office_reviewer": "office", "agency_reviewer": "agency_point",
              "unit_agent": "unit"}


@router.post("/users", status_code=201, tags=["organisations"])
async def create_user(body: UserIn, session: SessionDep, actor: Annotated[Principal, require_roles("admin")]) -> dict:
    org = await session.get(Org, body.org) if body.org else None
    if body.role not in ("admin", "member") and org is None:
        raise Invalid("员工必须属于一个组织。", code="org_required", errors=[{"loc": ["body", "org"], "msg": "组织不存在"}])
    if org is not None and body.role in ROLE_LEVEL and org.level != ROLE_LEVEL[body.role]:
        raise Invalid(f"角色 {body.role} 必须属于 {ROLE_LEVEL[body.role]} 级组织。", code="role_level_mismatch",
                      errors=[{"loc": ["body", "org"], "msg": "组织层级与角色不符"}])
    if body.role == "member":
        member = await session.get(Member, body.member_id) if body.member_id else None
        if member is None:
            raise Invalid("会员账号必须关联一名参互人员。", code="member_required",
                          errors=[{"loc": ["body", "member_id"], "msg": "参互人员不存在"}])
        org = await session.get(Org, member.unit)
    if (await session.execute(select(User.id).where(User.username == body.username))).first():
        raise Conflict(f"用户名 {body.username} 已存在。", code="username_taken")
    user = User(username=body.username, password_hash=hasher.hash(body.password), role=body.role,
                org=org.code if org else None, member_id=body.member_id if body.role == "member" else None)
    session.add(user)
    session.add(AuditEntry(actor=actor.username, action="user.create", subject=body.username,
                           detail={"role": body.role, "org": user.org}))
    await session.flush()
    return {"user_id": str(user.id), "username": user.username, "role": user.role, "org": user.org}


# --- periods ----------------------------------------------------------------------------------------------
async def read_rulebook(request: Request) -> Rulebook:
    """The request body as a rulebook, YAML or JSON (JSON is YAML: one loader reads both, numbers as Decimal,
    and names a syntax error's line); a bad one is a 422 naming every offending key."""
    raw = await request.body()
    try:
        return load_rulebook(raw) if raw.strip() else parse_rulebook({})
    except RulebookError as exc:
        raise Invalid("规则书有误，请按 errors 修改后重新提交。", code="invalid_rulebook",
                      errors=[{"loc": ["body", *e["loc"]], "msg": e["msg"]} for e in exc.errors]) from None


@router.post("/periods", status_code=201, tags=["periods"])
async def create_period(request: Request, session: SessionDep,
                        actor: Annotated[Principal, require_roles("admin")]) -> dict:
    rulebook = await read_rulebook(request)
    if await session.get(Period, rulebook.code) is not None:
        raise Conflict(f"互助期 {rulebook.code} 已存在。", code="period_exists")
    document = rulebook.to_document()
    session.add(Period(code=rulebook.code, name=rulebook.name, previous_period=rulebook.previous_period,
                       rulebook=document))
    session.add(AuditEntry(actor=actor.username, action="period.create", subject=rulebook.code, detail={}))
    await publish(session, MESSAGING, TOPIC_ENROLLMENT, PeriodPublished(period=rulebook.code, rulebook=document))
    return period_out(rulebook)


@router.put("/periods/{code}/rulebook", tags=["periods"])
async def correct_rulebook(code: str, request: Request, session: SessionDep,
                           actor: Annotated[Principal, require_roles("admin")],
                           reason: Annotated[str, Query(min_length=4, max_length=1000)]) -> dict:
    """A correction of a period's rules (the same code; a new revision), audited with its reason and published:
    claims re-assesses every member's stays in the period and records each difference as an adjustment."""
    period = await session.get(Period, code, with_for_update=True)
    if period is None:
        raise NotFound(f"互助期 {code} 不存在。", code="period_not_found")
    rulebook = await read_rulebook(request)
    if rulebook.code != code:
        raise Invalid("更正的规则书必须保持同一期号。", code="period_code_changed",
                      errors=[{"loc": ["body", "code"], "msg": f"应为 {code}"}])
    document = rulebook.to_document()
    if document == period.rulebook:
        raise Conflict("规则书没有变化。", code="rulebook_unchanged")
    before = period.rulebook
    period.rulebook, period.name, period.revision = document, rulebook.name, period.revision + 1
    session.add(AuditEntry(actor=actor.username, action="period.correct", subject=code,
                           detail={"reason": reason, "revision": period.revision,
                                   "changed": sorted(k for k in document if document.get(k) != before.get(k))}))
    await publish(session, MESSAGING, TOPIC_ENROLLMENT, PeriodPublished(
        period=code, rulebook=document, revision=period.revision, reason=reason))
    return {**period_out(rulebook), "revision": period.revision}


def period_out(rulebook: Rulebook) -> dict[str, Any]:
    return {"code": rulebook.code, "name": rulebook.name, "previous_period": rulebook.previous_period,
            "windows": rulebook.to_document()["windows"], "rulebook": rulebook.to_document()}


async def load_period(session: SessionDep, code: str) -> Rulebook:
    period = await session.get(Period, code)
    if period is None:
        raise NotFound(f"互助期 {code} 不存在。", code="period_not_found")
    return parse_rulebook(period.rulebook)


@router.get("/periods/{code}", tags=["periods"])
async def get_period(code: str, session: SessionDep, _: CurrentUser) -> dict:
    return period_out(await load_period(session, code))


# --- rosters ----------------------------------------------------------------------------------------------
class StaffIn(BaseModel):
    total: int = Field(ge=0)
    in_service: int = Field(ge=0)
    basic_insured_in_service: int = Field(ge=0)


class MemberIn(BaseModel):
    name: str = Field(max_length=100)
    certno: str = Field(max_length=18)
    phone: str = Field(max_length=20)
    sex: Literal["male", "female"]
    member_type: Literal["in_service", "retired"]
    bank_account: str = Field(max_length=40)
    bank_name: str = Field(max_length=100)
    insurance: list[str] = []
    plans: list[str] | None = None


class RosterIn(BaseModel):
    staff: StaffIn
    members: list[MemberIn]


def staff_may_act_for(principal: Principal, org_path: list[str]) -> None:
    if principal.role == "admin":
        return
    if principal.role in ("member", "bureau"):  # rosters are the unions' and finance's work
        raise Forbidden("此操作需要工会或财务角色。", code="role_not_allowed")
    principal.require_covers(org_path)


@router.post("/periods/{period}/units/{unit}/rosters", status_code=201, tags=["rosters"],
             openapi_extra={"requestBody": {"content": {
                 "application/json": {"schema": RosterIn.model_json_schema()},
                 "multipart/form-data": {"schema": {"type": "object", "required": ["file"], "properties": {
                     "file": {"type": "string", "format": "binary", "description": "CSV or XLSX"},
                     "staff_total": {"type": "integer"}, "staff_in_service": {"type": "integer"},
                     "staff_basic_insured_in_service": {"type": "integer"}}}}}}})
@idempotent(IDEMPOTENCY, status=201)
async def submit_roster(
    request: Request, period: str, unit: str, session: SessionDep,
    actor: Annotated[Principal, require_roles("unit_agent", "agency_reviewer", "office_reviewer",
                                                "centre_reviewer", "admin")],
    late_reason: Annotated[str | None, Query(max_length=500)] = None,
) -> dict:
    """Submit a unit's roster as JSON, or as a CSV/XLSX file (multipart ``file`` plus the staff counts as form
    fields ``staff_total``, ``staff_in_service``, ``staff_basic_insured_in_service``). Checked whole against the
    period's rulebook and refused whole, every problem listed by row. Outside the enrolment window only an
    admin may enter one, with a reason that is audited (第五条 forbids late enrolment; the centre's back-entry
    of paper records is the exception)."""
    rulebook = await load_period(session, period)
    org = await session.get(Org, unit)
    if org is None or org.level != "unit":
        raise NotFound(f"基层工会 {unit} 不存在。", code="unit_not_found")
    staff_may_act_for(actor, org.path)
    staff, members = await read_roster(request)
    stored = await store_roster(session, rulebook=rulebook, unit=org, staff=staff, members=members, actor=actor,
                                late_reason=late_reason)
    out = roster_out(stored.roster)
    out["warnings"] = stored.findings.warnings
    return out


async def read_roster(request: Request) -> tuple[Staff, list[RosterMember]]:
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        form = await request.form()
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise Invalid("请上传名单文件（CSV 或 XLSX）。", code="file_required",
                          errors=[{"loc": ["body", "file"], "msg": "缺少必填项"}])
        # Parsing a provincial file takes a good part of a second: off the event loop, so other requests go on.
        parsed = await asyncio.to_thread(parse_roster_file, upload.filename or "", upload.content_type,
                                         await upload.read())
        counts: dict[str, int] = {}
        count_errors = []
        for name in ("staff_total", "staff_in_service", "staff_basic_insured_in_service"):
            raw = str(form.get(name) or "").strip()
            if not raw.isdigit():
                count_errors.append({"loc": ["body", name], "msg": "必须是非负整数（职工人数）", "code": "invalid_staff_count"})
            else:
                counts[name.removeprefix("staff_")] = int(raw)
        if parsed.errors or count_errors:
            errors = count_errors + parsed.errors
            raise Invalid(f"名单文件有 {len(errors)} 处问题，整份未保存，请逐行修改后重新上传。",
                          code="roster_rejected", errors=errors)
        return Staff(**counts), parsed.members
    try:
        body = RosterIn.model_validate_json(await request.body())
    except ValidationError as exc:
        raise Invalid("名单数据不符合要求，请按 errors 逐项修改。", code="roster_rejected",
                      errors=[member_row(e) for e in field_errors(list(exc.errors()))]) from None
    members = [RosterMember(name=m.name, certno=m.certno.strip().upper(), phone=m.phone, sex=m.sex,
                            member_type=m.member_type, bank_account=m.bank_account, bank_name=m.bank_name,
                            insurance=tuple(m.insurance), plans=tuple(m.plans) if m.plans is not None else None)
               for m in body.members]
    return Staff(**body.staff.model_dump()), members


def member_row(error: dict[str, Any]) -> dict[str, Any]:
    """A JSON roster's field error: ``loc`` under ``body``; a member's row named 第N条 (N = index + 1)."""
    loc = error["loc"]
    if len(loc) >= 2 and loc[0] == "members" and isinstance(loc[1], int):
        error = {**error, "msg": f"第{loc[1] + 1}条：{error['msg']}"}
    return {**error, "loc": ["body", *loc]}


def roster_out(roster: Roster) -> dict[str, Any]:
    return {"roster_id": str(roster.id), "period": roster.period, "unit": roster.unit, "status": roster.status,
            "members": roster.member_count, "fee_total": format_money(roster.fee_total),
            "paid_total": format_money(roster.paid_total), "fee_split": roster.fee_split}


async def load_roster(session: SessionDep, roster_id: uuid.UUID, actor: Principal) -> tuple[Roster, Org]:
    roster = await session.get(Roster, roster_id, with_for_update=True)
    if roster is None:
        raise NotFound("名单不存在。", code="roster_not_found")
    org = await session.get(Org, roster.unit)
    assert org is not None
    staff_may_act_for(actor, org.path)
    return roster, org


@router.get("/rosters/{roster_id}", tags=["rosters"])
async def get_roster(roster_id: uuid.UUID, session: SessionDep, actor: CurrentUser) -> dict:
    roster, _ = await load_roster(session, roster_id, actor)
    return roster_out(roster)


class PaymentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    amount: MoneyStr
    reference: str = Field(min_length=1, max_length=100)
    paid_at: SaneDate


@router.post("/rosters/{roster_id}/payments", tags=["rosters"])
@idempotent(IDEMPOTENCY)
async def pay_roster(
    request: Request, roster_id: uuid.UUID, body: PaymentIn, session: SessionDep,
    actor: Annotated[Principal, require_roles("unit_agent", "finance", "admin")],
) -> dict:
    """A payment to a roster as the bank shows it. Its bank date must lie within the enrolment window (第五条,
    for everyone, admin included); when the fees reach the total the members are covered from the day the
    rulebook's ``enrolment.cover_starts`` says."""
    roster, org = await load_roster(session, roster_id, actor)
    if roster.status != "awaiting_payment":
        raise Conflict("该名单已交足费用。", code="roster_already_paid")
    rulebook = await load_period(session, roster.period)
    problem = payment_date_problem(rulebook, body.paid_at, today=date.today())
    if problem is not None:
        raise Invalid(problem.msg, code=problem.code,
                      errors=[{"loc": ["body", "paid_at"], "msg": problem.msg, "code": problem.code}])
    after = roster.paid_total + body.amount
    if after > roster.fee_total:  # 第四条: exact amounts only; over-payment is refused
        raise Invalid(f"付款后合计 {format_money(after)} 超过应交 {format_money(roster.fee_total)}。",
                      code="overpayment", errors=[{"loc": ["body", "amount"], "msg": "超过应交金额"}])
    session.add(RosterPayment(roster_id=roster.id, amount=body.amount, reference=body.reference,
                              paid_at=body.paid_at, recorded_by=actor.username))
    roster.paid_total = after
    await publish(session, MESSAGING, TOPIC_ENROLLMENT, FeesReceived(
        roster_id=str(roster.id), period=roster.period, unit=roster.unit, amount=body.amount,
        reference=body.reference, unit_path=org.path))
    if after == roster.fee_total:
        roster.status = "active"
        earlier = (await session.execute(select(func.max(RosterPayment.paid_at)).where(
            RosterPayment.roster_id == roster.id, RosterPayment.paid_at > body.paid_at))).scalar()
        await cover_roster(session, rulebook, roster, org, fees_complete_on=earlier or body.paid_at)
    return roster_out(roster)


async def cover_roster(session: SessionDep, rulebook: Rulebook, roster: Roster, org: Org, *,
                       fees_complete_on: date) -> None:
    """Fees reached the total (the latest bank date of the roster's payments is ``fees_complete_on``): every
    member of the roster is covered from the day the rulebook says to the end of the coverage window."""
    coverage = rulebook.windows.coverage
    covered_from = cover_start(rulebook, fees_complete_on)
    await session.execute(update(Enrolment).where(Enrolment.roster_id == roster.id).values(
        status="covered", covered_from=covered_from, covered_to=coverage.to))
    rows = (await session.execute(
        select(Enrolment.plans, Enrolment.renewing, Enrolment.fee, Member)
        .join(Member, Member.id == Enrolment.member_id).where(Enrolment.roster_id == roster.id)
    )).all()
    await publish_many(session, MESSAGING, TOPIC_ENROLLMENT, [MemberCovered(
        member_id=str(member.id), period=roster.period, plans=plans, coverage_from=covered_from,
        coverage_to=coverage.to, name=member.name, certno=member.certno, sex=member.sex,
        member_type=member.member_type, unit=org.code, unit_path=org.path, bank_account=member.bank_account,
        bank_name=member.bank_name, phone=member.phone, renewing=renewing, fee=fee, member_version=member.version)
        for plans, renewing, fee, member in rows])
    await grant_loyalty(session, rulebook, roster)


# --- members ----------------------------------------------------------------------------------------------
async def member_out(session: SessionDep, member: Member, actor: Principal) -> dict[str, Any]:
    enrolments = (await session.execute(
        select(Enrolment).join(Period, Period.code == Enrolment.period).where(Enrolment.member_id == member.id)
        .order_by(Period.created_at, Enrolment.period))).scalars()
    # Personal data masked for every role, the member and their unit agent included (issue #9): whole only
    # through POST /members/{id}/reveal, on purpose and audited (transfers.reveal).
    return {
        "member_id": str(member.id), "name": member.name,
        "certno": mask_certno(member.certno), "phone": mask_phone(member.phone),
        "bank_account": mask_account(member.bank_account),
        "bank_name": member.bank_name, "sex": member.sex, "member_type": member.member_type, "unit": member.unit,
        "coverages": [
            {"period": e.period, "plan": plan, "status": e.status, "roster_id": str(e.roster_id), "unit": e.unit,
             "from": e.covered_from.isoformat() if e.covered_from else None,
             "to": e.covered_to.isoformat() if e.covered_to else None}
            for e in enrolments for plan in e.plans
        ],
    }


async def visible_member(session: SessionDep, member: Member | None, actor: Principal) -> Member:
    if member is None:
        raise NotFound("参互人员不存在。", code="member_not_found")
    if actor.role == "member":
        if actor.member_id != str(member.id):
            raise Forbidden("只能查看本人信息。", code="not_yourself")
        return member
    if actor.role == "bureau":  # a bureau sends settlement feeds; it reads no member records
        raise Forbidden("医保部门账号不能查看参互人员信息。", code="role_not_allowed")
    if actor.role != "admin":
        org = await session.get(Org, member.unit)
        assert org is not None
        actor.require_covers(org.path)
    return member


@router.get("/members", tags=["members"])
async def find_members(session: SessionDep, actor: CurrentUser,
                       certno: Annotated[str, Query(min_length=15, max_length=18)]) -> list[dict]:
    """A person by ID number: 18 digits, or a 15-digit first-generation number (matched as its 18-digit form)."""
    member = (await session.execute(select(Member).where(Member.certno == idnumber.lookup_form(certno))
                                    )).scalar_one_or_none()
    if member is None:
        return []
    try:
        await visible_member(session, member, actor)
    except (Forbidden, Problem):
        return []  # outside the caller's branch: the person does not exist for them
    return [await member_out(session, member, actor)]


@router.get("/members/{member_id}", tags=["members"])
async def get_member(member_id: uuid.UUID, session: SessionDep, actor: CurrentUser) -> dict:
    member = await visible_member(session, await session.get(Member, member_id), actor)
    return await member_out(session, member, actor)


@router.get("/periods/{period}/summary", tags=["periods"])
async def period_summary(period: str, session: SessionDep,
                         _: Annotated[Principal, require_fund_wide("admin", "finance", "centre_reviewer")]) -> dict:
    await load_period(session, period)
    rows = (await session.execute(
        select(Roster.status, func.count(), func.sum(Roster.fee_total), func.sum(Roster.paid_total))
        .where(Roster.period == period).group_by(Roster.status))).all()
    return {"period": period, "rosters": {r[0]: {"count": r[1], "fee_total": format_money(r[2]),
                                                 "paid_total": format_money(r[3])} for r in rows}}
