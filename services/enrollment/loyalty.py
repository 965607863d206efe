"""Loyalty (第十五条, seed 003): members who took part in the previous N periods in a row without receiving aid
are granted the cover the rulebook names (Yunnan 18th period: 15th-17th without aid -> 重大意外伤害保障).

Coverage and aid come from ``coverage.py``: enrolments here with aid learned from the claims service's
``claim.approved`` events (table ``member_aid``), and, for periods run before this system, the history the
centre imported (``POST /api/v1/periods/{code}/history``, with each person's "aid received"). A chain
period that is not in the system at all grants nothing: nobody can be shown to qualify.
"""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.enrollment.coverage import LOYAL_MEMBERS
from services.enrollment.models import MESSAGING, MemberAid, Period, Roster
from shared.events import TOPIC_ENROLLMENT, ClaimApproved, Envelope, EventPayload, LoyaltyGranted
from shared.messaging import publish_many
from shared.rulebook import Rulebook


async def previous_periods(session: AsyncSession, rulebook: Rulebook, count: int) -> list[str]:
    chain: list[str] = []
    code = rulebook.previous_period
    while code and len(chain) < count:
        period = await session.get(Period, code)
        if period is None:
            break
        chain.append(code)
        code = period.previous_period
    return chain


async def grant_loyalty(session: AsyncSession, rulebook: Rulebook, roster: Roster) -> int:
    rule = rulebook.enrolment.loyalty
    if rule is None:
        return 0
    chain = await previous_periods(session, rulebook, rule.periods_without_aid)
    if len(chain) < rule.periods_without_aid:
        return 0
    granted = (await session.execute(text(
        "INSERT INTO loyalty_grants (member_id, period, \"grant\", periods_without_aid, granted_at) "
        f"SELECT l.member_id, :period, :grant, CAST(:chain AS varchar[]), now() FROM ({LOYAL_MEMBERS}) l "
        "ON CONFLICT DO NOTHING RETURNING member_id"),
        {"period": roster.period, "grant": rule.grants, "chain": chain, "roster": roster.id, "n": len(chain)}
    )).scalars().all()
    await publish_many(session, MESSAGING, TOPIC_ENROLLMENT, [
        LoyaltyGranted(member_id=str(member_id), period=roster.period, grant=rule.grants, periods_without_aid=chain)
        for member_id in granted])
    return len(granted)


async def aid_approved(session: AsyncSession, _: Envelope, event: EventPayload) -> None:
    """Remember that the member received aid in the period (aid of 0 is not aid received)."""
    assert isinstance(event, ClaimApproved)
    if event.aid_amount <= Decimal("0.00"):
        return
    stmt = insert(MemberAid).values(member_id=event.member_id, period=event.period, aid_total=event.aid_amount)
    await session.execute(stmt.on_conflict_do_update(
        index_elements=["member_id", "period"], set_={"aid_total": MemberAid.aid_total + event.aid_amount}))
