"""Enrollment's service layer: each function is one command or query of api.py. It loads what the rules need,
asks the pure rules (services/enrollment/domain/) and stores and publishes the outcome in the request's one
transaction (the session commits once, after the endpoint returns: shared/deps.py)."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from argon2 import PasswordHasher
from fastapi import Request
from pydantic import ValidationError
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.enrollment.domain.fee_payments import cover_start, payment_date_problem
from services.enrollment.domain.orgs import OrgProblem, org_path, staff_org_problem
from services.enrollment.domain.roster_files import parse_roster_file
from services.enrollment.domain.roster_rules import RosterMember, Staff
from services.enrollment.loyalty import grant_loyalty
from services.enrollment.models import (
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
from services.enrollment.schemas import (
    CoverageOut,
    MemberOut,
    OrgIn,
    OrgOut,
    PaymentIn,
    PeriodOut,
    PeriodSummaryOut,
    RosterCounts,
    RosterIn,
    RosterOut,
    RosterSubmitted,
    RosterWarning,
    UserIn,
    UserOut,
)
from shared import idnumber
from shared.auth import Principal
from shared.errors import Conflict, Forbidden, Invalid, NotFound, Problem, field_errors
from shared.events import TOPIC_ENROLLMENT, FeesReceived, MemberCovered, PeriodPublished
from shared.masking import mask_account, mask_certno, mask_phone
from shared.messaging import publish, publish_many
from shared.money import format_money
from shared.rulebook import Rulebook, RulebookError, load_rulebook, parse_rulebook, period_rulebook
from shared.vocab import EnrolmentStatus, OrgLevel, Role, RosterStatus

hasher = PasswordHasher()


# --- login (the endpoints are in logins.py) ---------------------------------------------------------------
async def principal_of(session: AsyncSession, user: User) -> Principal:
    org = await session.get(Org, user.org) if user.org else None
    return Principal(
        user_id=str(user.id), username=user.username, role=user.role, org=org.code if org else "",
        org_level=org.level if org else "", org_path=tuple(org.path) if org else (),
        member_id=str(user.member_id) if user.member_id else None,
    )


# --- organisations and staff -------------------------------------------------------------------------------
def org_out(org: Org) -> OrgOut:
    return OrgOut(code=org.code, name=org.name, level=OrgLevel(org.level), parent=org.parent, path=list(org.path))


def invalid(problem: OrgProblem) -> Invalid:
    return Invalid(problem.detail, code=problem.code, errors=[{"loc": ["body", problem.field], "msg": problem.msg}])


async def create_org(session: AsyncSession, body: OrgIn) -> OrgOut:
    if await session.get(Org, body.code) is not None:
        raise Conflict(f"组织代码 {body.code} 已存在。", code="org_exists")
    parent = await session.get(Org, body.parent) if body.parent else None
    path = org_path(body.code, body.level, body.parent is not None,
                    (OrgLevel(parent.level), list(parent.path)) if parent else None)
    if isinstance(path, OrgProblem):
        raise invalid(path)
    org = Org(code=body.code, name=body.name, level=body.level, parent=body.parent, path=path)
    session.add(org)
    return org_out(org)


async def get_org(session: AsyncSession, code: str, actor: Principal) -> OrgOut:
    org = await session.get(Org, code)
    if org is None:
        raise NotFound(f"组织 {code} 不存在。")
    if actor.role != Role.ADMIN:
        actor.require_covers(org.path)
    return org_out(org)


async def create_user(session: AsyncSession, body: UserIn, actor: Principal) -> UserOut:
    org = await session.get(Org, body.org) if body.org else None
    problem = staff_org_problem(body.role, OrgLevel(org.level) if org else None)
    if problem is not None:
        raise invalid(problem)
    if body.role == Role.MEMBER:
        member = await session.get(Member, body.member_id) if body.member_id else None
        if member is None:
            raise Invalid("会员账号必须关联一名参互人员。", code="member_required",
                          errors=[{"loc": ["body", "member_id"], "msg": "参互人员不存在"}])
        org = await session.get(Org, member.unit)
    if (await session.execute(select(User.id).where(User.username == body.username))).first():
        raise Conflict(f"用户名 {body.username} 已存在。", code="username_taken")
    user = User(username=body.username, password_hash=hasher.hash(body.password), role=body.role,
                org=org.code if org else None, member_id=body.member_id if body.role == Role.MEMBER else None)
    session.add(user)
    session.add(AuditEntry(actor=actor.username, action="user.create", subject=body.username,
                           detail={"role": str(body.role), "org": user.org}))
    await session.flush()
    return UserOut(user_id=str(user.id), username=user.username, role=Role(user.role), org=user.org)


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


def period_out(rulebook: Rulebook, revision: int | None = None) -> PeriodOut:
    document = rulebook.to_document()
    return PeriodOut(code=rulebook.code, name=rulebook.name, previous_period=rulebook.previous_period,
                     windows=document["windows"], rulebook=document, revision=revision)


async def create_period(session: AsyncSession, rulebook: Rulebook, actor: Principal) -> PeriodOut:
    if await session.get(Period, rulebook.code) is not None:
        raise Conflict(f"互助期 {rulebook.code} 已存在。", code="period_exists")
    document = rulebook.to_document()
    session.add(Period(code=rulebook.code, name=rulebook.name, previous_period=rulebook.previous_period,
                       rulebook=document))
    session.add(AuditEntry(actor=actor.username, action="period.create", subject=rulebook.code, detail={}))
    await publish(session, MESSAGING, TOPIC_ENROLLMENT, PeriodPublished(period=rulebook.code, rulebook=document))
    return period_out(rulebook)


async def correct_rulebook(session: AsyncSession, code: str, rulebook: Rulebook, reason: str,
                           actor: Principal) -> PeriodOut:
    """A correction of a period's rules (the same code; a new revision), audited with its reason and published:
    claims re-assesses every member's stays in the period and records each difference as an adjustment."""
    period = await session.get(Period, code, with_for_update=True)
    if period is None:
        raise NotFound(f"互助期 {code} 不存在。", code="period_not_found")
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
    return period_out(rulebook, period.revision)


async def load_period(session: AsyncSession, code: str) -> Rulebook:
    period = await session.get(Period, code)
    if period is None:
        raise NotFound(f"互助期 {code} 不存在。", code="period_not_found")
    return period_rulebook(period.code, period.revision, period.rulebook)


async def get_period(session: AsyncSession, code: str) -> PeriodOut:
    return period_out(await load_period(session, code))


async def period_summary(session: AsyncSession, period: str) -> PeriodSummaryOut:
    await load_period(session, period)
    rows = (await session.execute(
        select(Roster.status, func.count(), func.sum(Roster.fee_total), func.sum(Roster.paid_total))
        .where(Roster.period == period).group_by(Roster.status))).all()
    return PeriodSummaryOut(period=period, rosters={
        RosterStatus(status): RosterCounts(count=count, fee_total=fee, paid_total=paid)
        for status, count, fee, paid in rows})


# --- rosters ----------------------------------------------------------------------------------------------
def staff_may_act_for(principal: Principal, org_path: list[str]) -> None:
    if principal.role == Role.ADMIN:
        return
    if principal.role in (Role.MEMBER, Role.BUREAU):  # rosters are the unions' and finance's work
        raise Forbidden("此操作需要工会或财务角色。", code="role_not_allowed")
    principal.require_covers(org_path)


@dataclass(frozen=True)
class RosterInput:
    """A roster as sent: the staff counts, the rows and the unit's choice of payers (None: not given)."""

    staff: Staff
    members: list[RosterMember]
    payers: dict[str, Decimal] | None = None


# The payers as union staff write them in a file upload's ``payers`` field (seed 002 "行政、工会、职工个人").
PAYER_WORDS = {"行政": "employer", "单位": "employer", "单位行政": "employer", "工会": "union", "个人": "member",
               "职工": "member", "职工个人": "member"}


PAYER_SEPARATORS = str.maketrans("；，,：=", ";;;::")


def read_payers(raw: str) -> dict[str, Decimal] | None:
    """A form's ``payers``: ``行政:0.5;个人:0.5`` (or the codes, ``employer:0.5;member:0.5``); blank -> None.
    Raises Invalid naming the field when it cannot be read."""
    text = raw.strip()
    if not text:
        return None
    payers: dict[str, Decimal] = {}
    for part in text.translate(PAYER_SEPARATORS).split(";"):
        if not part.strip():
            continue
        name, _, share = part.partition(":")
        try:
            amount = Decimal(share.strip())
        except ArithmeticError:
            amount = None
        name = name.strip()
        if amount is None or not amount.is_finite() or not name or len(name) > 50 or name in payers:
            msg = "付费方式应写成“行政:0.5;个人:0.5”（各付费方及其比例，比例之和为 1）。"
            raise Invalid(msg, code="roster_rejected",
                          errors=[{"loc": ["body", "payers"], "msg": msg, "code": "invalid_payers"}])
        payers[PAYER_WORDS.get(name, name)] = amount
    return payers


async def read_roster(request: Request) -> RosterInput:
    """A roster as JSON (``RosterIn``) or as a multipart CSV/XLSX ``file`` with the staff counts as fields (and
    optionally ``staff_as_of``, the day of the count, and ``payers``)."""
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
        as_of = None
        raw_as_of = str(form.get("staff_as_of") or "").strip()
        if raw_as_of:
            try:
                as_of = date.fromisoformat(raw_as_of)
            except ValueError:
                count_errors.append({"loc": ["body", "staff_as_of"], "msg": "必须是日期（YYYY-MM-DD）",
                                     "code": "invalid_staff_as_of"})
        payers = read_payers(str(form.get("payers") or ""))
        if parsed.errors or count_errors:
            errors = count_errors + parsed.errors
            raise Invalid(f"名单文件有 {len(errors)} 处问题，整份未保存，请逐行修改后重新上传。",
                          code="roster_rejected", errors=errors)
        return RosterInput(Staff(**counts, as_of=as_of), parsed.members, payers)
    try:
        body = RosterIn.model_validate_json(await request.body())
    except ValidationError as exc:
        raise Invalid("名单数据不符合要求，请按 errors 逐项修改。", code="roster_rejected",
                      errors=[member_row(e) for e in field_errors(list(exc.errors()))]) from None
    members = [RosterMember(name=m.name, certno=m.certno.strip().upper(), phone=m.phone, sex=m.sex,
                            member_type=m.member_type, bank_account=m.bank_account, bank_name=m.bank_name,
                            insurance=tuple(m.insurance), plans=tuple(m.plans) if m.plans is not None else None,
                            shares=m.shares)
               for m in body.members]
    return RosterInput(Staff(**body.staff.model_dump()), members, body.payers)


def member_row(error: dict[str, Any]) -> dict[str, Any]:
    """A JSON roster's field error: ``loc`` under ``body``; a member's row named 第N条 (N = index + 1)."""
    loc = error["loc"]
    if len(loc) >= 2 and loc[0] == "members" and isinstance(loc[1], int):
        error = {**error, "msg": f"第{loc[1] + 1}条：{error['msg']}"}
    return {**error, "loc": ["body", *loc]}


def roster_out(roster: Roster) -> RosterOut:
    return RosterOut(roster_id=str(roster.id), period=roster.period, unit=roster.unit,
                     status=RosterStatus(roster.status), members=roster.member_count, fee_total=roster.fee_total,
                     paid_total=roster.paid_total, fee_split=roster.fee_split)


async def submit_roster(session: AsyncSession, request: Request, period: str, unit: str, actor: Principal,
                        late_reason: str | None) -> RosterSubmitted:
    """A unit's roster, checked whole against the period's rulebook and refused whole (rosters.py)."""
    rulebook = await load_period(session, period)
    org = await session.get(Org, unit)
    if org is None or org.level != OrgLevel.UNIT:
        raise NotFound(f"基层工会 {unit} 不存在。", code="unit_not_found")
    staff_may_act_for(actor, org.path)
    given = await read_roster(request)
    stored = await store_roster(session, rulebook=rulebook, unit=org, staff=given.staff, members=given.members,
                                actor=actor, late_reason=late_reason, payers=given.payers)
    return RosterSubmitted(**roster_out(stored.roster).model_dump(),
                           warnings=[RosterWarning.model_validate(w) for w in stored.findings.warnings])


async def load_roster(session: AsyncSession, roster_id: uuid.UUID, actor: Principal) -> tuple[Roster, Org]:
    roster = await session.get(Roster, roster_id, with_for_update=True)
    if roster is None:
        raise NotFound("名单不存在。", code="roster_not_found")
    org = await session.get(Org, roster.unit)
    assert org is not None
    staff_may_act_for(actor, org.path)
    return roster, org


async def get_roster(session: AsyncSession, roster_id: uuid.UUID, actor: Principal) -> RosterOut:
    roster, _ = await load_roster(session, roster_id, actor)
    return roster_out(roster)


async def pay_roster(session: AsyncSession, roster_id: uuid.UUID, body: PaymentIn, actor: Principal) -> RosterOut:
    """A payment to a roster as the bank shows it (第四条, 第五条); the last one covers the roster's members."""
    roster, org = await load_roster(session, roster_id, actor)
    if roster.status != RosterStatus.AWAITING_PAYMENT:
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
        roster.status = RosterStatus.ACTIVE
        earlier = (await session.execute(select(func.max(RosterPayment.paid_at)).where(
            RosterPayment.roster_id == roster.id, RosterPayment.paid_at > body.paid_at))).scalar()
        await cover_roster(session, rulebook, roster, org, fees_complete_on=earlier or body.paid_at)
    return roster_out(roster)


async def cover_roster(session: AsyncSession, rulebook: Rulebook, roster: Roster, org: Org, *,
                       fees_complete_on: date) -> None:
    """Fees reached the total (the latest bank date of the roster's payments is ``fees_complete_on``): every
    member of the roster is covered from the day the rulebook says to the end of the coverage window."""
    coverage = rulebook.windows.coverage
    covered_from = cover_start(rulebook, fees_complete_on)
    await session.execute(update(Enrolment).where(Enrolment.roster_id == roster.id).values(
        status=EnrolmentStatus.COVERED, covered_from=covered_from, covered_to=coverage.to))
    rows = (await session.execute(
        select(Enrolment.plans, Enrolment.renewing, Enrolment.fee, Enrolment.shares, Member)
        .join(Member, Member.id == Enrolment.member_id).where(Enrolment.roster_id == roster.id)
    )).all()
    await publish_many(session, MESSAGING, TOPIC_ENROLLMENT, [MemberCovered(
        member_id=str(member.id), period=roster.period, plans=plans, coverage_from=covered_from,
        coverage_to=coverage.to, name=member.name, certno=member.certno, sex=member.sex,
        member_type=member.member_type, unit=org.code, unit_path=org.path, bank_account=member.bank_account,
        bank_name=member.bank_name, phone=member.phone, renewing=renewing, fee=fee, member_version=member.version,
        shares=shares)
        for plans, renewing, fee, shares, member in rows])
    await grant_loyalty(session, rulebook, roster)


# --- members ----------------------------------------------------------------------------------------------
async def member_out(session: AsyncSession, member: Member) -> MemberOut:
    enrolments = (await session.execute(
        select(Enrolment).join(Period, Period.code == Enrolment.period).where(Enrolment.member_id == member.id)
        .order_by(Period.created_at, Enrolment.period))).scalars()
    # Personal data masked for every role, the member and their unit agent included (issue #9): whole only
    # through POST /members/{id}/reveal, on purpose and audited (transfers.reveal).
    return MemberOut(
        member_id=str(member.id), name=member.name, certno=mask_certno(member.certno),
        phone=mask_phone(member.phone), bank_account=mask_account(member.bank_account),
        bank_name=member.bank_name, sex=member.sex, member_type=member.member_type,
        unit=member.unit,
        coverages=[CoverageOut(period=e.period, plan=plan, status=EnrolmentStatus(e.status),
                               roster_id=str(e.roster_id), unit=e.unit, from_=e.covered_from, to=e.covered_to)
                   for e in enrolments for plan in e.plans])


async def visible_member(session: AsyncSession, member: Member | None, actor: Principal) -> Member:
    if member is None:
        raise NotFound("参互人员不存在。", code="member_not_found")
    if actor.role == Role.MEMBER:
        if actor.member_id != str(member.id):
            raise Forbidden("只能查看本人信息。", code="not_yourself")
        return member
    if actor.role == Role.BUREAU:  # a bureau sends settlement feeds; it reads no member records
        raise Forbidden("医保部门账号不能查看参互人员信息。", code="role_not_allowed")
    if actor.role != Role.ADMIN:
        org = await session.get(Org, member.unit)
        assert org is not None
        actor.require_covers(org.path)
    return member


async def find_members(session: AsyncSession, certno: str, actor: Principal) -> list[MemberOut]:
    """A person by ID number: 18 digits, or a 15-digit first-generation number (matched as its 18-digit form)."""
    member = (await session.execute(select(Member).where(Member.certno == idnumber.lookup_form(certno))
                                    )).scalar_one_or_none()
    if member is None:
        return []
    try:
        await visible_member(session, member, actor)
    except (Forbidden, Problem):
        return []  # outside the caller's branch: the person does not exist for them
    return [await member_out(session, member)]


async def get_member(session: AsyncSession, member_id: uuid.UUID, actor: Principal) -> MemberOut:
    return await member_out(session, await visible_member(session, await session.get(Member, member_id), actor))

