"""Loyalty (第十五条, seed 003): members who took part in the previous N periods in a row without receiving aid
are granted the cover the rulebook names (Yunnan 18th period: 15th-17th without aid -> 重大意外伤害保障).

Coverage and aid come from ``coverage.py``: enrolments here with aid learned from the claims service's events
and, for periods run before this system, the history the centre imported (``POST /api/v1/periods/{code}/history``,
with each person's "aid received"). A chain period that is not in the system at all grants nothing: nobody can
be shown to qualify.

Aid is kept per claim (``claim_aid``: approved, adjusted, reversed, revoked; any order, any number of copies)
and summed per member and period (``member_aid``). When a period's aid appears or goes, the member's grants
are counted again (``recount_loyalty``, rules in domain/loyalty_rules.py): aid appearing in a granted chain
withdraws the grant (``member.loyalty_revoked``), aid going may grant it (``member.loyalty_granted``).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.enrollment.coverage import LOYAL_MEMBERS
from services.enrollment.domain.loyalty_rules import (
    AID_ON_PAPER,
    ZERO,
    ClaimAid,
    ClaimAidEvent,
    LoyaltyChange,
    aided_periods,
    claim_aid_after,
    loyalty_change,
)
from services.enrollment.models import (
    MESSAGING,
    ClaimAidRow,
    Enrolment,
    LoyaltyGrant,
    Member,
    MemberAid,
    Period,
    Roster,
)
from shared.events import (
    TOPIC_ENROLLMENT,
    ClaimAdjusted,
    ClaimApproved,
    ClaimRejected,
    ClaimRevoked,
    Envelope,
    EventPayload,
    LoyaltyGranted,
    LoyaltyRevoked,
)
from shared.messaging import PoisonEvent, publish, publish_many
from shared.rulebook import Rulebook, period_rulebook
from shared.vocab import EnrolmentStatus


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
        LoyaltyGranted(member_id=str(member_id), period=roster.period, grant=rule.grants, periods_without_aid=chain,
                       version=1)
        for member_id in granted])
    return len(granted)


# --- aid per claim ----------------------------------------------------------------------------------------
def _claim_aid_event(event: EventPayload) -> tuple[ClaimAidEvent, Decimal | None, ClaimApproved | ClaimAdjusted
                                                    | ClaimRejected | ClaimRevoked]:
    match event:
        case ClaimApproved():
            return ClaimAidEvent.APPROVED, event.aid_amount, event
        case ClaimAdjusted():
            return ClaimAidEvent.ADJUSTED, event.aid_amount, event
        case ClaimRejected():
            return ClaimAidEvent.REJECTED, None, event
        case ClaimRevoked():
            return ClaimAidEvent.REVOKED, None, event
    raise PoisonEvent(f"{type(event).__name__} carries no aid")


async def claim_aid_changed(session: AsyncSession, envelope: Envelope, event: EventPayload) -> None:
    """A claim's aid as the claims service decided it: approved, adjusted, reversed (claim.rejected) or revoked.
    Kept per claim, so a copy changes nothing and an adjustment before its approval is not lost; when the
    member's aid in the period appears or goes, 第十五条 is counted again for them."""
    kind, amount, claim = _claim_aid_event(event)
    claim_id, period = claim.claim_id, claim.period
    try:
        member_id = uuid.UUID(claim.member_id)
    except ValueError:
        raise PoisonEvent(f"member_id {claim.member_id!r} is not a member id") from None
    # One member at a time: two of their claims (two partitions) change one period's sum.
    await session.execute(select(Member.id).where(Member.id == member_id).with_for_update())
    row = await session.get(ClaimAidRow, claim_id, with_for_update=True)
    period = row.period if row is not None else period
    if not period:
        return  # refused at intake before any period was known: no aid anywhere
    current = ClaimAid(row.aid, row.ended, row.adjusted_at) if row is not None else None
    after = claim_aid_after(current, kind, amount, envelope.occurred_at)
    if after == current:
        return
    if row is None:
        session.add(ClaimAidRow(claim_id=claim_id, member_id=member_id, period=period, aid=after.aid,
                                ended=after.ended, adjusted_at=after.adjusted_at))
    else:
        row.aid, row.ended, row.adjusted_at = after.aid, after.ended, after.adjusted_at
    await session.flush()
    before_total = await session.get(MemberAid, (member_id, period), with_for_update=True)
    was_aided = before_total is not None and before_total.aid_total > ZERO
    total = (await session.execute(select(func.coalesce(func.sum(ClaimAidRow.aid), ZERO)).where(
        ClaimAidRow.member_id == member_id, ClaimAidRow.period == period))).scalar_one()
    await session.execute(insert(MemberAid).values(member_id=member_id, period=period, aid_total=total)
                          .on_conflict_do_update(index_elements=["member_id", "period"], set_={"aid_total": total}))
    if was_aided != (total > ZERO):
        await recount_loyalty(session, member_id, period, now=envelope.occurred_at)


# --- counting again ---------------------------------------------------------------------------------------
async def chain_aid(session: AsyncSession, certno: str, periods: list[str]) -> dict[str, Decimal | None]:
    """For each of the periods the person was covered in: their aid there (the sum of their claims' aid), or
    AID_ON_PAPER when the imported record of a period run on paper says they received aid."""
    rows = (await session.execute(text(
        "SELECT e.period, coalesce(a.aid_total, 0) AS aid, false AS on_paper FROM enrolments e "
        "JOIN members m ON m.id = e.member_id LEFT JOIN member_aid a ON a.member_id = e.member_id "
        "AND a.period = e.period WHERE m.certno = :certno AND e.status IN ('covered', 'withdrawn') "
        "AND e.period = ANY(CAST(:periods AS varchar[])) "
        "UNION ALL SELECT h.period, 0, h.aid_received FROM period_history h WHERE h.certno = :certno "
        "AND h.period = ANY(CAST(:periods AS varchar[]))"), {"certno": certno, "periods": periods})).all()
    aid: dict[str, Decimal | None] = {}
    for period, amount, on_paper in rows:
        if on_paper or (period in aid and aid[period] is AID_ON_PAPER):
            aid[period] = AID_ON_PAPER
        else:
            aid[period] = (aid.get(period) or ZERO) + Decimal(amount)
    return aid


async def recount_loyalty(session: AsyncSession, member_id: uuid.UUID, changed: str, *, now: datetime) -> int:
    """The member's aid in period ``changed`` appeared or went: each period whose chain holds it is decided
    again (第十五条). Returns the number of grants given or withdrawn."""
    member = await session.get(Member, member_id)
    if member is None:
        return 0
    covered = set((await session.execute(select(Enrolment.period).where(
        Enrolment.member_id == member_id, Enrolment.status == EnrolmentStatus.COVERED))).scalars())
    grants = {g.period: g for g in (await session.execute(select(LoyaltyGrant).where(
        LoyaltyGrant.member_id == member_id).with_for_update())).scalars()}
    changes = 0
    for code in sorted(covered | set(grants)):
        period = await session.get(Period, code)
        rulebook = period_rulebook(period.code, period.revision, period.rulebook) if period is not None else None
        rule = rulebook.enrolment.loyalty if rulebook is not None else None
        if rulebook is None or rule is None:
            continue
        chain = await previous_periods(session, rulebook, rule.periods_without_aid)
        grant = grants.get(code)
        live = list(grant.periods_without_aid) if grant is not None and grant.withdrawn_at is None else None
        if changed not in chain and changed not in (live or []):
            continue
        aid = await chain_aid(session, member.certno, sorted({*chain, *(live or [])}))
        change = loyalty_change(chain, rule.periods_without_aid, aid, granted_chain=live)
        if change is LoyaltyChange.GRANT and code in covered:
            chain = chain[:rule.periods_without_aid]
            if grant is None:
                grant = LoyaltyGrant(member_id=member_id, period=code, grant=rule.grants, periods_without_aid=chain,
                                     granted_at=now, version=1)
                session.add(grant)
            else:
                grant.grant, grant.periods_without_aid, grant.granted_at = rule.grants, chain, now
                grant.withdrawn_at, grant.version = None, grant.version + 1
            await publish(session, MESSAGING, TOPIC_ENROLLMENT, LoyaltyGranted(
                member_id=str(member_id), period=code, grant=grant.grant, periods_without_aid=chain,
                version=grant.version))
            changes += 1
        elif change is LoyaltyChange.WITHDRAW and grant is not None:
            grant.withdrawn_at, grant.version = now, grant.version + 1
            await publish(session, MESSAGING, TOPIC_ENROLLMENT, LoyaltyRevoked(
                member_id=str(member_id), period=code, grant=grant.grant,
                periods_without_aid=list(grant.periods_without_aid),
                aided_periods=aided_periods(list(grant.periods_without_aid), aid), version=grant.version))
            changes += 1
    await session.flush()
    return changes
