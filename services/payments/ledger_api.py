"""The fund ledger over HTTP (docs/API.md "GET /api/v1/ledger/periods/{period}"): the period statement, the fees
reconciliation, and recoveries with the money that came back. Finance only: these are the fund's books."""

from __future__ import annotations

import uuid
from collections import defaultdict
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select

from services.payments import journal, ledger
from services.payments.models import IDEMPOTENCY, FeesReceipt, OfficeRemittance, Recovery, UnitFees
from shared.auth import Principal, require_fund_wide
from shared.deps import SessionDep
from shared.errors import Conflict, Invalid, NotFound
from shared.fields import PositiveMoney
from shared.idempotency import idempotent
from shared.money import format_money
from shared.schemas import MoneyOut, problem_responses

router = APIRouter(prefix="/api/v1", tags=["ledger"])
BOOKS = ("finance", "admin")
ZERO = Decimal("0.00")
Reconciled = Literal["matched", "short", "over"]


class StatementOut(BaseModel):
    period: str
    fees_received: MoneyOut
    aid_approved: MoneyOut
    aid_paid: MoneyOut
    aid_approved_unpaid: MoneyOut
    recoveries_due: MoneyOut
    recovered: MoneyOut
    balance: MoneyOut  # fees received - aid paid + recovered: the period's money at the fund's bank
    postings_sum: MoneyOut  # 0.00 when the books balance
    entries: int
    accounts: dict[str, MoneyOut]


class UnitFeesOut(BaseModel):
    unit: str
    office: str | None
    members_covered: int
    roster_fees: MoneyOut
    received: MoneyOut
    difference: MoneyOut
    status: Reconciled


class OfficeFeesOut(BaseModel):
    office: str | None
    roster_fees: MoneyOut
    received: MoneyOut
    difference: MoneyOut
    status: Reconciled
    remitted: MoneyOut
    remittance_difference: MoneyOut
    remittance_status: Reconciled


class FeesTotalsOut(BaseModel):
    roster_fees: MoneyOut
    received: MoneyOut
    difference: MoneyOut
    status: Reconciled


class ReconciliationOut(BaseModel):
    period: str
    units: list[UnitFeesOut]
    offices: list[OfficeFeesOut]
    totals: FeesTotalsOut


class RecoveryOut(BaseModel):
    recovery_id: str
    claim_id: str
    member_id: str
    period: str
    amount_due: MoneyOut
    amount_recovered: MoneyOut
    outstanding: MoneyOut
    reason: str
    created_at: str


@router.get("/ledger/periods/{period}", response_model=StatementOut, responses=problem_responses(403))
async def period_statement(period: str, session: SessionDep,
                           _: Annotated[Principal, require_fund_wide(*BOOKS)]) -> dict[str, Any]:
    """``balance`` is the period's money at the fund's bank: fees received - aid paid + recovered."""
    s, entries = await journal.period_statement(session, period)
    return {
        "period": period, "fees_received": format_money(s.fees_received), "aid_approved": format_money(s.aid_approved),
        "aid_paid": format_money(s.aid_paid), "aid_approved_unpaid": format_money(s.aid_approved_unpaid),
        "recoveries_due": format_money(s.recoveries_due), "recovered": format_money(s.recovered),
        "balance": format_money(s.balance), "postings_sum": format_money(s.postings_sum), "entries": entries,
        "accounts": {account: format_money(amount) for account, amount in s.accounts.items()},
    }


def _status(difference: Decimal) -> str:
    return "matched" if difference == 0 else "short" if difference < 0 else "over"


@router.get("/ledger/periods/{period}/fees-reconciliation", response_model=ReconciliationOut,
            responses=problem_responses(403))
async def fees_reconciliation(period: str, session: SessionDep,
                              _: Annotated[Principal, require_fund_wide(*BOOKS)]) -> dict[str, Any]:
    """Fees received per unit and office (roster.fees_received) against the roster data (the fees of the members
    covered, member.covered): docs/DOMAIN.md "the amount remitted must equal the enrolment data in the system".
    ``difference`` = received - roster fees: "short" owes money; "over" is usually a roster paid in part and
    not yet covered (its members are not in the roster data until it is paid in full, 第四条)."""
    roster = {(unit, office): (fees, members) for unit, office, fees, members in (await session.execute(
        select(UnitFees.unit, UnitFees.office, func.sum(UnitFees.fee), func.count())
        .where(UnitFees.period == period).group_by(UnitFees.unit, UnitFees.office))).all()}
    office_of = {unit: office for unit, office in roster}
    received: dict[str, Decimal] = {}
    for unit, office, amount in (await session.execute(
            select(FeesReceipt.unit, FeesReceipt.office, func.sum(FeesReceipt.amount)).where(
                FeesReceipt.period == period).group_by(FeesReceipt.unit, FeesReceipt.office))).all():
        received[unit] = received.get(unit, ZERO) + amount
        if office:  # known from the event even before any member of the unit is covered
            office_of.setdefault(unit, office)
    remitted = dict((await session.execute(select(OfficeRemittance.office, func.sum(OfficeRemittance.amount))
                                           .where(OfficeRemittance.period == period)
                                           .group_by(OfficeRemittance.office))).all())
    units = []
    offices: dict[str, dict[str, Decimal]] = defaultdict(lambda: {"roster_fees": ZERO, "received": ZERO})
    for unit in sorted(set(office_of) | set(received)):
        office = office_of.get(unit, "")
        fees, members = next(((f, m) for (u, _), (f, m) in roster.items() if u == unit), (ZERO, 0))
        got = received.get(unit, ZERO)
        units.append({"unit": unit, "office": office or None, "members_covered": members,
                      "roster_fees": format_money(fees), "received": format_money(got),
                      "difference": format_money(got - fees), "status": _status(got - fees)})
        offices[office]["roster_fees"] += fees
        offices[office]["received"] += got
    for office in remitted:  # an office that remitted with no unit payment on record still shows
        offices[office]["received"] += ZERO
    total_fees = sum((o["roster_fees"] for o in offices.values()), ZERO)
    total_received = sum((o["received"] for o in offices.values()), ZERO)
    return {
        "period": period, "units": units,
        # Per office, also what it remitted to the centre (fees.remitted) against what its units paid:
        # "the amount remitted must equal the enrolment data in the system".
        "offices": [{"office": office or None, "roster_fees": format_money(o["roster_fees"]),
                     "received": format_money(o["received"]),
                     "difference": format_money(o["received"] - o["roster_fees"]),
                     "status": _status(o["received"] - o["roster_fees"]),
                     "remitted": format_money(remitted.get(office, ZERO)),
                     "remittance_difference": format_money(remitted.get(office, ZERO) - o["received"]),
                     "remittance_status": _status(remitted.get(office, ZERO) - o["received"])}
                    for office, o in sorted(offices.items())],
        "totals": {"roster_fees": format_money(total_fees), "received": format_money(total_received),
                   "difference": format_money(total_received - total_fees),
                   "status": _status(total_received - total_fees)},
    }


def recovery_out(r: Recovery) -> dict[str, Any]:
    return {"recovery_id": str(r.id), "claim_id": r.claim_id, "member_id": r.member_id, "period": r.period,
            "amount_due": format_money(r.amount_due), "amount_recovered": format_money(r.amount_recovered),
            "outstanding": format_money(r.amount_due - r.amount_recovered), "reason": r.reason,
            "created_at": r.created_at.isoformat()}


@router.get("/recoveries", response_model=list[RecoveryOut], responses=problem_responses(403))
async def list_recoveries(session: SessionDep, _: Annotated[Principal, require_fund_wide(*BOOKS)],
                          claim_id: str | None = None, period: str | None = None) -> list[dict[str, Any]]:
    stmt = select(Recovery).order_by(Recovery.created_at).limit(1000)
    if claim_id:
        stmt = stmt.where(Recovery.claim_id == claim_id)
    if period:
        stmt = stmt.where(Recovery.period == period)
    return [recovery_out(r) for r in (await session.execute(stmt)).scalars().all()]


class ReceiptIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    amount: PositiveMoney
    reference: str = Field(min_length=1, max_length=100)


@router.post("/recoveries/{recovery_id}/receipts", status_code=201, response_model=RecoveryOut,
             responses=problem_responses(403, 404, 409))
@idempotent(IDEMPOTENCY, status=201)
async def record_recovery_receipt(request: Request, recovery_id: uuid.UUID, body: ReceiptIn, session: SessionDep,
                                  _: Annotated[Principal, require_fund_wide("finance")]) -> dict[str, Any]:
    """Money asked back reached the fund's account (bank / recoveries_receivable); one bank reference once."""
    recovery = await session.get(Recovery, recovery_id, with_for_update=True)
    if recovery is None:
        raise NotFound("追回记录不存在。", code="recovery_not_found")
    if recovery.amount_recovered + body.amount > recovery.amount_due:
        raise Invalid(f"追回金额超过尚欠的 {format_money(recovery.amount_due - recovery.amount_recovered)}。",
                      code="over_recovery", errors=[{"loc": ["body", "amount"], "msg": "超过尚欠金额"}])
    if not await journal.post(session, recovery.period, ledger.recovery_received(body.amount),
                              f"recovered:{recovery.id}:{body.reference}", f"追回到账 claim {recovery.claim_id}"):
        raise Conflict("该银行流水号已登记过。", code="duplicate_receipt")
    recovery.amount_recovered += body.amount
    return recovery_out(recovery)
