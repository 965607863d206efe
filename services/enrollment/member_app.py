"""The member's own record for the app (issue #13 item 1): ``GET /api/v1/me``.

Who they are (masked like everyone's: they know their own data, a stolen token need not), their unit, each
coverage with its fee and where that fee stands, and the loyalty grants they earned (第十五条).

Fee state of a coverage (第四条 one share a person a period, 第五条 paid within the window): the unit pays the
whole roster's fees; a member is covered only once the roster's total has arrived.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from services.enrollment.models import Enrolment, LoyaltyGrant, Member, Org, Period, Roster
from shared.auth import Principal, require_roles
from shared.deps import SessionDep
from shared.errors import NotFound
from shared.masking import mask_account, mask_certno, mask_phone
from shared.schemas import MoneyOut, problem_responses

router = APIRouter(prefix="/api/v1", tags=["members"])


class FeeState(StrEnum):
    """Where a member's fee for a period stands."""

    PAID = "paid"  # the roster's fees arrived in full: covered (or covered and withdrawn later, 第十四条 no refund)
    HELD = "held"  # the unit has paid part of the roster's fees: the cover waits for the rest (第五条)
    UNPAID = "unpaid"  # nothing paid on the roster yet


def fee_state(enrolment_status: str, roster_paid: bool, roster_part_paid: bool) -> FeeState:
    """Pure: the fee state of one enrolment from its status and its roster's payments."""
    if enrolment_status in ("covered", "withdrawn") or roster_paid:
        return FeeState.PAID
    return FeeState.HELD if roster_part_paid else FeeState.UNPAID


class MyCoverage(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    period: str
    period_name: str
    plan: str
    status: str = Field(description="pending | covered | withdrawn")
    roster_id: str
    unit: str
    from_: date | None = Field(default=None, alias="from")
    to: date | None = None
    withdrawn_on: date | None = None
    fee: MoneyOut = Field(description="the member's fee for the period (one share, 第四条)")
    fee_state: FeeState
    fee_state_zh: str


class LoyaltyGrantOut(BaseModel):
    period: str
    grant: str = Field(description="the cover granted, as the rulebook names it (第十五条)")
    periods_without_aid: list[str]
    granted_at: datetime


class MeOut(BaseModel):
    member_id: str
    name: str
    certno: str = Field(description="masked: region and last 4")
    phone: str = Field(description="masked")
    bank_account: str = Field(description="masked")
    bank_name: str
    sex: str
    member_type: str
    unit: str
    unit_name: str
    coverages: list[MyCoverage]
    loyalty_grants: list[LoyaltyGrantOut]


FEE_STATE_ZH = {
    FeeState.PAID: "已交费",
    FeeState.HELD: "单位已交部分费用，交足后生效（第五条）",
    FeeState.UNPAID: "单位尚未交费",
}


def own_member_id(actor: Principal) -> uuid.UUID:
    """The member id the caller's token names; a token naming none (or no valid id) finds no member: 404."""
    try:
        return uuid.UUID(actor.member_id or "")
    except ValueError:
        raise NotFound("参互人员不存在。", code="member_not_found") from None


@router.get("/me", response_model=MeOut, response_model_by_alias=True, responses=problem_responses(403, 404))
async def me(session: SessionDep, actor: Annotated[Principal, require_roles("member")]) -> MeOut:
    """The member's own record, masked like everyone's, with their fees and loyalty grants."""
    member = await session.get(Member, own_member_id(actor))
    if member is None:
        raise NotFound("参互人员不存在。", code="member_not_found")
    rows = (await session.execute(
        select(Enrolment, Roster.fee_total, Roster.paid_total, Period.name)
        .join(Roster, Roster.id == Enrolment.roster_id).join(Period, Period.code == Enrolment.period)
        .where(Enrolment.member_id == member.id).order_by(Period.created_at, Enrolment.period))).all()
    coverages: list[MyCoverage] = []
    for e, fee_total, paid_total, period_name in rows:
        state = fee_state(e.status, paid_total >= fee_total, paid_total > 0)
        coverages.extend(MyCoverage(
            period=e.period, period_name=period_name, plan=plan, status=e.status, roster_id=str(e.roster_id),
            unit=e.unit, from_=e.covered_from, to=e.covered_to, withdrawn_on=e.withdrawn_on, fee=e.fee,
            fee_state=state, fee_state_zh=FEE_STATE_ZH[state]) for plan in e.plans)
    grants = (await session.execute(select(LoyaltyGrant).where(LoyaltyGrant.member_id == member.id,
                                                                 LoyaltyGrant.withdrawn_at.is_(None))
                                    .order_by(LoyaltyGrant.granted_at))).scalars()
    unit = await session.get(Org, member.unit)
    return MeOut(
        member_id=str(member.id), name=member.name, certno=mask_certno(member.certno),
        phone=mask_phone(member.phone), bank_account=mask_account(member.bank_account), bank_name=member.bank_name,
        sex=member.sex, member_type=member.member_type, unit=member.unit, unit_name=unit.name if unit else "",
        coverages=coverages,
        loyalty_grants=[LoyaltyGrantOut(period=g.period, grant=g.grant, periods_without_aid=list(g.periods_without_aid),
                                        granted_at=g.granted_at) for g in grants])
