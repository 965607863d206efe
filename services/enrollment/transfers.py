"""A person belongs to one unit at a time, and only an audited process moves them (issue #9).

A roster names people; for someone the system already knows as a member of another unit it may not simply
take them over (that was the takeover: another office's member, a new bank account, their pending aid paid
to the attacker). The row is refused (``member_of_another_unit``), unless a transfer is on record:

- the member's current unit agent, the centre or the admin released them (``POST /members/{id}/release``,
  audited), to one named unit or to whichever unit enrols them next; the release is used once; or
- the period's rules allow a change of employer between periods (``enrolment.transfer_between_periods``)
  and the old unit does not cover them now (no pending enrolment there, no coverage there not yet over).

Either way the move is audited in the member's trail (``member.transfer``). The refusal names neither the
other unit nor its branch. Whatever the roster says, it does not change a known member's bank account,
phone or identity details: the stored ones are kept and the row gets a warning (the change is made by PATCH
by the member's own unit agent, audited and announced at the previous phone).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.enrollment.domain.roster_rules import RosterMember, row_problem
from services.enrollment.models import AuditEntry, Member, MemberRelease, Org
from services.enrollment.schemas import ReleaseOut, RevealOut
from shared.auth import Principal, require_roles
from shared.deps import SessionDep
from shared.errors import Conflict, Forbidden, Invalid, NotFound
from shared.rulebook import Rulebook
from shared.schemas import problem_responses

router = APIRouter(prefix="/api/v1", tags=["members"])

# The roster's values of a known person that the roster never changes (column, how the warning names it).
KEPT_FIELDS = (("name", "姓名"), ("sex", "性别"), ("phone", "手机号码"), ("bank_account", "银行账号"),
               ("bank_name", "开户银行"))


@dataclass
class Transfer:
    member_id: Any
    row: int
    from_unit: str
    basis: str  # release | between_periods
    release_id: uuid.UUID | None = None


@dataclass
class Belonging:
    """What a roster may do with the known people it names: the refused rows, the moves, the warnings."""

    errors: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[dict[str, Any]] = field(default_factory=list)
    transfers: list[Transfer] = field(default_factory=list)

    @property
    def refused_rows(self) -> set[int]:
        return {int(e["loc"][1]) for e in self.errors}


async def check_belonging(session: AsyncSession, *, rulebook: Rulebook, unit: str,
                          members: Sequence[RosterMember], known: dict[str, tuple[Any, ...]],
                          today: date) -> Belonging:
    """``known``: certno -> (id, name, sex, phone, member_type, bank_account, bank_name, unit), as
    rosters.known_members reads it."""
    certnos = [m.certno for m in members]
    found = Belonging()
    elsewhere = {certno: known[certno] for certno in certnos if certno in known and known[certno][7] != unit}
    released: dict[Any, uuid.UUID] = {}
    busy: set[Any] = set()
    if elsewhere:
        ids = [k[0] for k in elsewhere.values()]
        for member_id, release_id in (await session.execute(text(
                "SELECT r.member_id, r.id FROM member_releases r JOIN members m ON m.id = r.member_id "
                "WHERE r.member_id = ANY(:ids) AND r.used_at IS NULL AND r.from_unit = m.unit "
                "AND (r.to_unit IS NULL OR r.to_unit = :unit) ORDER BY r.released_at"),
                {"ids": ids, "unit": unit})).all():
            released.setdefault(member_id, release_id)
        if rulebook.enrolment.transfer_between_periods:
            busy = set((await session.execute(text(
                "SELECT DISTINCT e.member_id FROM enrolments e JOIN members m ON m.id = e.member_id "
                "WHERE e.member_id = ANY(:ids) AND e.unit = m.unit AND (e.status = 'pending' OR "
                "(e.status = 'covered' AND e.covered_to >= :today))"), {"ids": ids, "today": today})).scalars())
    for row, given in enumerate(members):  # 0-based, as check_roster names rows (第N行 / 第N条 from row_problem)
        certno = given.certno
        stored = known.get(certno)
        if stored is None:
            continue
        if certno in elsewhere:
            member_id, from_unit = stored[0], stored[7]
            if member_id in released:
                found.transfers.append(Transfer(member_id, row, from_unit, "release", released[member_id]))
            elif rulebook.enrolment.transfer_between_periods and member_id not in busy:
                found.transfers.append(Transfer(member_id, row, from_unit, "between_periods"))
            else:
                found.errors.append(row_problem(
                    row, given, "certno", "此人是其他单位的参互会员。须由其所在单位或互助中心办理转出后，方可列入本单位名单。",
                    "member_of_another_unit"))
                continue
        kept = (stored[1], stored[2], stored[3], stored[5], stored[6])  # as KEPT_FIELDS, in that order
        if kept == (given.name, given.sex, given.phone, given.bank_account, given.bank_name):
            continue  # the usual renewal: nothing differs (checked once per row, 200,000 rows a roster)
        for (key, label), value in zip(KEPT_FIELDS, kept, strict=True):
            if getattr(given, key) != value:
                found.warnings.append(row_problem(
                    row, given, key, f"{label}与系统登记的不同，名单不改变已登记的{label}。如需变更，"
                    "请由会员所属单位经办人通过会员信息变更办理（留痕并通知会员）。", "stored_value_kept"))
    return found


async def record_transfers(session: AsyncSession, transfers: Sequence[Transfer], *, unit: str, period: str,
                           roster_id: uuid.UUID, actor: Principal) -> None:
    """The moves a stored roster made: each member's unit, the release used, a line in their audit trail."""
    now = datetime.now(UTC)
    for t in transfers:
        await session.execute(update(Member).where(Member.id == t.member_id).values(unit=unit, version=Member.version + 1))
        if t.release_id is not None:
            await session.execute(update(MemberRelease).where(MemberRelease.id == t.release_id).values(
                used_at=now, used_by_roster=roster_id))
        session.add(AuditEntry(actor=actor.username, action="member.transfer", subject=str(t.member_id), detail={
            "from_unit": t.from_unit, "to_unit": unit, "period": period, "roster_id": str(roster_id),
            "basis": t.basis, "release_id": str(t.release_id) if t.release_id else None}))


# --- release -----------------------------------------------------------------------------------------------
class ReleaseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    to_unit: str | None = Field(default=None, min_length=1, max_length=50)
    reason: str = Field(min_length=2, max_length=500)


async def own_member(session: AsyncSession, member_id: uuid.UUID, actor: Principal) -> tuple[Member, Org]:
    """The member, for their own unit's agent (the unit itself, not a unit above it) or someone whose branch
    covers their unit; anyone else is told the member does not exist for them."""
    member = await session.get(Member, member_id, with_for_update=True)
    if member is None:
        raise NotFound("参互人员不存在。", code="member_not_found")
    org = await session.get(Org, member.unit)
    assert org is not None
    if actor.role == "unit_agent" and actor.org != member.unit:
        raise Forbidden("该对象不在您所属组织的管辖范围内。", code="outside_subtree")
    actor.require_covers(org.path)
    return member, org


@router.post("/members/{member_id}/release", response_model=ReleaseOut,
             responses=problem_responses(403, 404, 409))
async def release(member_id: uuid.UUID, body: ReleaseIn, session: SessionDep,
                  actor: Annotated[Principal, require_roles("unit_agent", "centre_reviewer", "admin")]) -> dict:
    """The member's current unit (or the centre, or the admin) lets them go to another unit: the next roster
    of ``to_unit`` (of any unit when omitted) that names them moves them there. Audited."""
    member, _ = await own_member(session, member_id, actor)
    if body.to_unit is not None:
        target = await session.get(Org, body.to_unit)
        if target is None or target.level != "unit":
            raise Invalid("转入单位不存在。", code="unit_not_found",
                          errors=[{"loc": ["body", "to_unit"], "msg": "不是已登记的基层工会"}])
        if target.code == member.unit:
            raise Invalid("转入单位就是该会员现在的单位。", code="same_unit",
                          errors=[{"loc": ["body", "to_unit"], "msg": "与现单位相同"}])
    if (await session.execute(select(MemberRelease.id).where(
            MemberRelease.member_id == member.id, MemberRelease.used_at.is_(None),
            MemberRelease.from_unit == member.unit))).first():
        raise Conflict("该会员已办理转出，尚待新单位名单登记。", code="already_released")
    entry = MemberRelease(id=uuid.uuid4(), member_id=member.id, from_unit=member.unit, to_unit=body.to_unit,
                          reason=body.reason, released_by=actor.username, released_at=datetime.now(UTC))
    session.add(entry)
    session.add(AuditEntry(actor=actor.username, action="member.release", subject=str(member.id), detail={
        "from_unit": member.unit, "to_unit": body.to_unit, "reason": body.reason, "release_id": str(entry.id)}))
    return {"release_id": str(entry.id), "member_id": str(member.id), "from_unit": member.unit,
            "to_unit": body.to_unit, "reason": body.reason, "released_at": entry.released_at.isoformat()}


# --- reveal ------------------------------------------------------------------------------------------------
RevealField = Literal["certno", "phone", "bank_account"]


class RevealIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    fields: list[RevealField] = Field(min_length=1, max_length=3)
    reason: str = Field(min_length=2, max_length=500)


@router.post("/members/{member_id}/reveal", response_model=RevealOut, response_model_exclude_none=True,
             responses=problem_responses(403, 404))
async def reveal(member_id: uuid.UUID, body: RevealIn, session: SessionDep,
                 actor: Annotated[Principal, require_roles("unit_agent", "admin")]) -> dict:
    """Personal data whole, on purpose: for the member's own unit agent and the admin, with a reason, each
    reveal a line in the member's audit trail (which fields, who, why; never the values)."""
    member, _ = await own_member(session, member_id, actor)
    fields = sorted(set(body.fields))
    session.add(AuditEntry(actor=actor.username, action="member.reveal", subject=str(member.id),
                           detail={"fields": fields, "reason": body.reason}))
    return {"member_id": str(member.id), **{name: getattr(member, name) for name in fields}}
