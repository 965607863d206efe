"""Changing facts (issue 4 §5): when a stay leaves a member's period, the rest are assessed again.

Choice: a claim's ``assessed_aid`` keeps its first assessment for ever;
``aid_amount`` is what the member is due now; every difference is a ``claim_adjustments`` row (with its cause,
the rulebook that computed it and who triggered it) plus a ``claim_adjustment`` audit step. For a claim whose
aid was already approved, payments is told by ``ClaimAdjusted`` (> 0 a top-up, < 0 a recovery). A claim still
in review is only re-routed: its ``ClaimApproved`` will carry the new amount.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.claims.domain.reassess import BandedStay, FixedStay, Reassessed, reassess_banded, reassess_fixed
from services.claims.domain.routing import LEVELS, review_path
from services.claims.models import MESSAGING, Claim, ClaimAdjustment, ClaimStep, Coverage, PeriodCopy
from shared.auth import Principal
from shared.events import TOPIC_CLAIMS, ClaimAdjusted
from shared.messaging import publish
from shared.rulebook import BandedPlan, FixedPlan, Rulebook, parse_rulebook

# A claim counts towards the member's period once it is live: its base raises the next stay's total.
LIVE = ("in_review", "returned", "approved", "paid", "payment_failed")
# Aid already decided: a change must reach payments.
DECIDED = ("approved", "paid", "payment_failed")
ZERO = Decimal("0.00")


async def live_claims(session: AsyncSession, member_id: str, period: str, plan: str) -> Sequence[Claim]:
    return (await session.execute(
        select(Claim).where(Claim.member_id == member_id, Claim.period == period, Claim.plan == plan,
                            Claim.status.in_(LIVE))
        .order_by(Claim.created_at, Claim.id).with_for_update())).scalars().all()


async def record_adjustment(session: AsyncSession, claim: Claim, new_aid: Decimal, *, cause: str, reason: str,
                            actor: Principal, cause_claim: Claim | None, explanation: str | None) -> ClaimAdjustment:
    old_aid = claim.aid_amount or ZERO
    announced = claim.status in DECIDED
    adjustment = ClaimAdjustment(
        id=uuid.uuid4(), claim_id=claim.id, member_id=claim.member_id, period=claim.period,
        amount=new_aid - old_aid, aid_before=old_aid, aid_after=new_aid, cause=cause,
        cause_claim_id=cause_claim.id if cause_claim else None, reason=reason, explanation=explanation,
        rulebook_code=claim.rulebook_code, announced=announced, by_username=actor.username)
    session.add(adjustment)
    # Recorded as the system's step (naming who caused it), so the person whose decision triggered the
    # re-assessment may still decide this claim (one person never decides two steps: adjust is not one).
    session.add(ClaimStep(claim_id=claim.id, level=None, decision="adjust", by_user="system",
                          by_username=f"system（{actor.username}）", reason=f"{reason}（{old_aid} -> {new_aid}）",
                          rulebook_code=claim.rulebook_code, aid_amount=new_aid))
    claim.aid_amount = new_aid
    if explanation:
        claim.explanation = explanation
    if announced:
        await publish(session, MESSAGING, TOPIC_CLAIMS, ClaimAdjusted(
            adjustment_id=str(adjustment.id), claim_id=str(claim.id), member_id=claim.member_id,
            period=claim.period or "", amount=adjustment.amount, aid_amount=new_aid, reason=reason))
    return adjustment


def reroute(claim: Claim, rulebook: Rulebook) -> None:
    """A claim in review whose aid changed: the level that gives final approval follows the new amount,
    but never below the level it has already reached."""
    if claim.status not in ("in_review", "returned") or claim.aid_amount is None:
        return
    path = review_path(rulebook.approval, claim.aid_amount)
    reached = claim.current_level or claim.returned_level
    if reached is not None and reached in LEVELS and LEVELS.index(path[-1]) < LEVELS.index(reached):
        path = [t.level for t in rulebook.approval.tiers if LEVELS.index(t.level) <= LEVELS.index(reached)]
    claim.review_path, claim.final_level = path, path[-1]


async def reassess_member_period(session: AsyncSession, *, member_id: str, period: str | None, plan_code: str,
                                 cause: str, reason: str, actor: Principal,
                                 cause_claim: Claim | None = None) -> list[ClaimAdjustment]:
    """Assess the member's live stays in the period again, in order; record every difference."""
    if period is None:
        return []
    period_row = await session.get(PeriodCopy, period)
    if period_row is None:
        return []
    rulebook = parse_rulebook(period_row.rulebook)
    plan = rulebook.plan(plan_code)
    claims = list(await live_claims(session, member_id, period, plan_code))
    results: list[Reassessed]
    if isinstance(plan, BandedPlan):
        other = (await session.execute(select(func.coalesce(func.sum(Claim.aid_amount), 0)).where(
            Claim.member_id == member_id, Claim.plan == plan_code, Claim.period != period,
            Claim.status.in_(LIVE)))).scalar_one()
        results = reassess_banded(plan, [BandedStay(str(c.id), c.base or ZERO, c.aid_amount or ZERO) for c in claims],
                                  Decimal(other or 0))
    elif isinstance(plan, FixedPlan):
        coverage = await session.get(Coverage, (member_id, period))
        sex = coverage.sex if coverage else ""
        results = reassess_fixed(plan, [FixedStay(str(c.id), str(c.diagnosis.get("icd10", "")), sex,
                                                  c.aid_amount or ZERO) for c in claims])
    else:  # second aid is decided claim by claim by the centre
        return []
    adjustments = []
    by_id = {str(c.id): c for c in claims}
    for result in results:
        claim = by_id[result.claim_id]
        if result.cumulative_base:
            claim.cumulative_base = result.cumulative_base
        if result.difference == 0:
            continue
        adjustments.append(await record_adjustment(session, claim, result.new_aid, cause=cause, reason=reason,
                                                   actor=actor, cause_claim=cause_claim,
                                                   explanation=result.explanation))
        reroute(claim, rulebook)
    return adjustments


SYSTEM = Principal(user_id="system", username="system", role="admin", org="", org_level="", org_path=())


async def reassess_period(session: AsyncSession, period: str, reason: str) -> int:
    """Every member's live stays in the period, assessed again (after a rulebook correction); returns how
    many adjustments were recorded."""
    pairs = (await session.execute(select(Claim.member_id, Claim.plan).where(
        Claim.period == period, Claim.status.in_(LIVE)).distinct())).all()
    count = 0
    for member_id, plan_code in pairs:
        count += len(await reassess_member_period(session, member_id=member_id, period=period, plan_code=plan_code,
                                                  cause="rulebook_correction", reason=reason, actor=SYSTEM))
    return count
