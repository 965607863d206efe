"""Loyalty (第十五条, seed 003): members who took part in the previous N periods in a row without receiving aid
are granted the cover the rulebook names (Yunnan 18th period: 15th-17th without aid -> 重大意外伤害保障).

Aid is learned from the claims service's ``claim.approved`` events (table ``member_aid``). Periods that were
run before this system existed are not in it: without their records nobody can be shown to qualify, so no
grant is made (the centre enters those periods' rosters first if it wants the rule applied).
"""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

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
        "SELECT e.member_id, e.period, :grant, CAST(:chain AS varchar[]), now() FROM enrolments e "
        "WHERE e.roster_id = :roster "
        "AND (SELECT count(DISTINCT p.period) FROM enrolments p WHERE p.member_id = e.member_id "
        "     AND p.period = ANY(CAST(:chain AS varchar[])) AND p.status IN ('covered', 'withdrawn')) = :n "
        "AND NOT EXISTS (SELECT 1 FROM member_aid a WHERE a.member_id = e.member_id "
        "     AND a.period = ANY(CAST(:chain AS varchar[])) "
        "     AND a.aid_total > 0) "
        "ON CONFLICT DO NOTHING RETURNING member_id"),
        {"grant": rule.grants, "chain": chain, "roster": roster.id, "n": len(chain)})).scalars().all()
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
