"""Fees collected and remitted. Units pay their agency point or office; each office remits the pooled fees
to the centre, and "the amount remitted must equal the enrolment data in the system" (docs/DOMAIN.md, seed 003
第五条). The report shows, per unit and per office, fees due, received and remitted, and the gap."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select, text

from services.enrollment.models import IDEMPOTENCY, MESSAGING, AuditEntry, Org, Period, Remittance
from services.enrollment.schemas import RemittanceOut, RemittanceReportOut
from shared.auth import Principal, require_roles
from shared.deps import SessionDep
from shared.errors import Invalid, NotFound
from shared.events import TOPIC_ENROLLMENT, FeesRemitted
from shared.fields import PositiveMoney, SaneDate
from shared.idempotency import idempotent
from shared.messaging import publish
from shared.money import format_money
from shared.schemas import problem_responses

router = APIRouter(prefix="/api/v1", tags=["fees"])
ZERO = Decimal("0.00")


class RemittanceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    office: str
    amount: PositiveMoney
    reference: str = Field(min_length=1, max_length=100)
    remitted_at: SaneDate


@router.post("/periods/{period}/remittances", status_code=201, response_model=RemittanceOut,
             responses=problem_responses(403, 404, 409))
@idempotent(IDEMPOTENCY, status=201)
async def record_remittance(request: Request, period: str, body: RemittanceIn, session: SessionDep,
                            actor: Annotated[Principal, require_roles("finance", "admin")]) -> dict:
    """The centre's finance officer records an office's transfer as the bank shows it."""
    if await session.get(Period, period) is None:
        raise NotFound(f"互助期 {period} 不存在。", code="period_not_found")
    office = await session.get(Org, body.office)
    if office is None or office.level != "office":
        raise Invalid("办事处不存在。", code="office_not_found", errors=[{"loc": ["body", "office"], "msg": "不存在"}])
    actor.require_covers(office.path)
    remittance = Remittance(period=period, office=office.code, amount=body.amount, reference=body.reference,
                            remitted_at=body.remitted_at, recorded_by=actor.username)
    session.add(remittance)
    session.add(AuditEntry(actor=actor.username, action="remittance.record", subject=office.code,
                           detail={"period": period, "amount": format_money(body.amount), "reference": body.reference}))
    await session.flush()
    await publish(session, MESSAGING, TOPIC_ENROLLMENT, FeesRemitted(
        remittance_id=str(remittance.id), period=period, office=office.code, amount=body.amount,
        reference=body.reference, remitted_at=body.remitted_at))
    return {"remittance_id": str(remittance.id), "period": period, "office": office.code,
            "amount": format_money(body.amount), "reference": body.reference,
            "remitted_at": body.remitted_at.isoformat()}


@router.get("/periods/{period}/remittance-report", response_model=RemittanceReportOut,
            responses=problem_responses(403, 404))
async def remittance_report(period: str, session: SessionDep, actor: Annotated[Principal, require_roles(
        "finance", "admin", "centre_reviewer", "office_reviewer")]) -> dict[str, Any]:
    if await session.get(Period, period) is None:
        raise NotFound(f"互助期 {period} 不存在。", code="period_not_found")
    units = (await session.execute(text(
        "SELECT u.path[2] AS office, u.path, r.unit, u.name, count(*) AS rosters, sum(r.member_count) AS members, "
        "sum(r.fee_total) AS due, sum(r.paid_total) AS received, "
        "sum(CASE WHEN r.status = 'active' THEN r.member_count ELSE 0 END) AS covered "
        "FROM rosters r JOIN orgs u ON u.code = r.unit "
        "WHERE r.period = :period GROUP BY u.path, r.unit, u.name ORDER BY 1, 3"), {"period": period})).all()
    remitted = dict((await session.execute(
        select(Remittance.office, func.sum(Remittance.amount)).where(Remittance.period == period)
        .group_by(Remittance.office))).all())
    names = dict((await session.execute(select(Org.code, Org.name).where(Org.level == "office"))).all())
    offices: dict[str, dict[str, Any]] = {}
    for row in units:
        if not actor.covers(row.path):  # an office sees its own units; the centre sees all
            continue
        office = offices.setdefault(row.office, {"office": row.office, "name": names.get(row.office, ""),
                                                 "units": [], "due": ZERO, "received": ZERO})
        office["units"].append({"unit": row.unit, "name": row.name, "rosters": row.rosters, "members": row.members,
                                "members_covered": row.covered, "fees_due": format_money(row.due),
                                "fees_received": format_money(row.received),
                                "unpaid": format_money(row.due - row.received)})
        office["due"] += row.due
        office["received"] += row.received
    # An office that remitted without any roster in the system still shows, as over-remitted.
    for code, _ in remitted.items():
        if code not in offices:
            office_org = await session.get(Org, code)
            if office_org is not None and actor.covers(office_org.path):
                offices[code] = {"office": code, "name": office_org.name, "units": [], "due": ZERO,
                                 "received": ZERO}
    out, totals = [], {"due": ZERO, "received": ZERO, "remitted": ZERO}
    for code, office in offices.items():
        sent = remitted.get(code, ZERO)
        gap = office["received"] - sent
        out.append({**office, "fees_due": format_money(office.pop("due")),
                    "fees_received": format_money(office.pop("received")), "remitted": format_money(sent),
                    "gap": format_money(gap),
                    "status": "matched" if gap == 0 else ("to_remit" if gap > 0 else "over_remitted")})
        totals["due"] += Decimal(out[-1]["fees_due"])
        totals["received"] += Decimal(out[-1]["fees_received"])
        totals["remitted"] += sent
    return {"period": period, "offices": out,
            "totals": {"fees_due": format_money(totals["due"]), "fees_received": format_money(totals["received"]),
                       "remitted": format_money(totals["remitted"]),
                       "gap": format_money(totals["received"] - totals["remitted"])}}
