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
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.claims.domain.benefits import Stay, assess_graded, assess_per_day_period
from services.claims.domain.reassess import (
    BandedStay,
    FixedStay,
    Reassessed,
    reassess_banded,
    reassess_banded_fast,
    reassess_fixed,
)
from services.claims.domain.routing import LEVELS, review_path
from services.claims.domain.shares import in_shares, multiplied_by_shares, shares_note
from services.claims.models import MESSAGING, Claim, ClaimAdjustment, ClaimStep, Coverage
from services.claims.repository import rulebook_for, term_periods
from shared.auth import Principal
from shared.db import driver_connection
from shared.events import TOPIC_CLAIMS, ClaimAdjusted
from shared.messaging import publish, publish_many
from shared.rulebook import BandedPlan, FixedPlan, GradedPlan, PerDayPlan, Rulebook
from shared.vocab import ClaimStatus, Role

# A claim counts towards the member's period once it is live: its base raises the next stay's total.
LIVE = (ClaimStatus.IN_REVIEW, ClaimStatus.RETURNED, ClaimStatus.APPROVED, ClaimStatus.PAID, ClaimStatus.PAYMENT_FAILED)
# Aid already decided: a change must reach payments.
DECIDED = (ClaimStatus.APPROVED, ClaimStatus.PAID, ClaimStatus.PAYMENT_FAILED)
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
    if claim.status not in (ClaimStatus.IN_REVIEW, ClaimStatus.RETURNED) or claim.aid_amount is None:
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
    rulebook = await rulebook_for(session, period)
    if rulebook is None:
        return []
    coverage = await session.get(Coverage, (member_id, period))
    # the plan as the member holds it: times their shares where shares multiply it (domain/shares.py, seed 002)
    plan = in_shares(rulebook, rulebook.plan(plan_code), coverage.shares or 1 if coverage else 1)
    claims = list(await live_claims(session, member_id, period, plan_code))
    results: list[Reassessed]
    if isinstance(plan, BandedPlan):
        other = (await session.execute(select(func.coalesce(func.sum(Claim.aid_amount), 0)).where(
            Claim.member_id == member_id, Claim.plan == plan_code, Claim.period != period,
            Claim.status.in_(LIVE)))).scalar_one()
        results = reassess_banded(plan, [BandedStay(str(c.id), c.base or ZERO, c.aid_amount or ZERO) for c in claims],
                                  Decimal(other or 0))
    elif isinstance(plan, FixedPlan):
        sex = coverage.sex if coverage else ""
        term = await term_periods(session, member_id, plan, rulebook, period)
        if len(term) > 1:  # once_per: term (seed 002): the member's live claims in the whole term, in order
            claims = list((await session.execute(
                select(Claim).where(Claim.member_id == member_id, Claim.period.in_(term), Claim.plan == plan_code,
                                    Claim.status.in_(LIVE))
                .order_by(Claim.created_at, Claim.id).with_for_update())).scalars().all())
        results = reassess_fixed(plan, [FixedStay(str(c.id), str(c.diagnosis.get("icd10", "")), sex,
                                                  c.aid_amount or ZERO) for c in claims])
    elif isinstance(plan, PerDayPlan):  # seed 002 住院津贴: the period's paid days follow the live stays
        start = coverage.coverage_from if coverage else None
        days = assess_per_day_period(plan, [Stay(str(c.id), c.admission_date, c.discharge_date, start)
                                            for c in claims])
        results = [Reassessed(str(c.id), c.aid_amount or ZERO, d.aid_amount, ZERO, d.explanation)
                   for c, d in zip(claims, days, strict=True)]
    elif isinstance(plan, GradedPlan):  # seed 002 意外伤害: the period's cap follows the live claims, in order
        results = []
        total = ZERO
        for c in claims:
            grade = str(c.diagnosis.get("grade", ""))
            born = (c.diagnosis.get("beneficiary") or {}).get("birth_date")
            graded = assess_graded(plan, grade, c.admission_date, total,
                                   date.fromisoformat(born) if born else None)
            total = graded.period_total
            results.append(Reassessed(str(c.id), c.aid_amount or ZERO, graded.aid_amount, ZERO, graded.explanation))
    else:  # second aid is decided claim by claim by the centre
        return []
    adjustments = []
    by_id = {str(c.id): c for c in claims}
    note = shares_note(rulebook, rulebook.plan(plan_code), coverage.shares or 1 if coverage else 1)
    for result in results:
        claim = by_id[result.claim_id]
        if result.cumulative_base:
            claim.cumulative_base = result.cumulative_base
        if result.difference == 0:
            continue
        adjustments.append(await record_adjustment(session, claim, result.new_aid, cause=cause, reason=reason,
                                                   actor=actor, cause_claim=cause_claim,
                                                   explanation=note + result.explanation))
        reroute(claim, rulebook)
    return adjustments


SYSTEM = Principal(user_id="system", username="system", role=Role.ADMIN, org="", org_level="", org_path=())


async def reassess_period(session: AsyncSession, period: str, reason: str) -> int:
    """Every member's live stays in the period, assessed again after a rulebook correction; returns how many
    adjustments were recorded. Banded plans go in bulk (a provincial period has a million claims): the claims
    stream in member and submission order, the pure engine re-assesses each member, and the differences are
    written back with COPY and one UPDATE, announced to payments in one batch of outbox rows."""
    rulebook = await rulebook_for(session, period)
    if rulebook is None:
        return 0
    count = 0
    for plan in rulebook.plans:
        if isinstance(plan, BandedPlan):
            count += await _reassess_banded_period(session, rulebook, plan, period, reason)
        elif isinstance(plan, FixedPlan | PerDayPlan | GradedPlan):
            members = (await session.execute(select(Claim.member_id).where(
                Claim.period == period, Claim.plan == plan.code, Claim.status.in_(LIVE)).distinct())).scalars()
            for member_id in list(members):
                count += len(await reassess_member_period(
                    session, member_id=member_id, period=period, plan_code=plan.code, cause="rulebook_correction",
                    reason=reason, actor=SYSTEM))
    return count


async def _reassess_banded_period(session: AsyncSession, rulebook: Rulebook, plan: BandedPlan, period: str,
                                  reason: str) -> int:
    other: dict[str, Decimal] = {}
    if plan.max_aid_per_member is not None:  # the lifetime cap counts aid from the member's other periods
        other = {m: a or ZERO for m, a in (await session.execute(
            select(Claim.member_id, func.sum(Claim.aid_amount)).where(
                Claim.plan == plan.code, Claim.period != period, Claim.status.in_(LIVE))
            .group_by(Claim.member_id))).all()}
    # members holding several shares of the plan (seed 002 "多买几份", domain/shares.py): few, so a dict
    shares_of: dict[str, int] = {}
    if multiplied_by_shares(rulebook, plan):
        shares_of = {m: n for m, n in (await session.execute(select(Coverage.member_id, Coverage.shares).where(
            Coverage.period == period, Coverage.shares > 1))).all()}
    held: dict[int, BandedPlan] = {1: plan}
    raw = await driver_connection(session)
    changes: list[tuple[uuid.UUID, str, str, Decimal, Decimal]] = []  # claim, member, status, old, new
    member: str | None = None
    stays: list[Any] = []

    def settle() -> None:
        if not stays:
            return
        shares = shares_of.get(str(member), 1)
        if shares not in held:
            scaled = in_shares(rulebook, plan, shares)
            assert isinstance(scaled, BandedPlan)
            held[shares] = scaled
        new = reassess_banded_fast(held[shares], [row["base"] or ZERO for row in stays],
                                   other.get(str(member), ZERO))
        for row, aid in zip(stays, new, strict=True):
            if aid != (row["aid_amount"] or ZERO):
                changes.append((row["id"], row["member_id"], row["status"], row["aid_amount"] or ZERO, aid))

    async for row in raw.cursor(
            "SELECT id, member_id, base, aid_amount, status FROM claims WHERE period = $1 AND plan = $2 "
            "AND status = ANY($3::text[]) ORDER BY member_id, created_at, id FOR UPDATE", period, plan.code,
            list(LIVE), prefetch=20_000):
        if row["member_id"] != member:
            settle()
            member, stays = row["member_id"], []
        stays.append(row)
    settle()
    if not changes:
        return 0
    now = datetime.now(UTC)
    adjustments = [(uuid.uuid4(), claim_id, member_id, period, new - old, old, new, "rulebook_correction", reason,
                    rulebook.code, status in DECIDED, SYSTEM.username, now)
                   for claim_id, member_id, status, old, new in changes]
    await raw.copy_records_to_table("claim_adjustments", records=adjustments, columns=(
        "id", "claim_id", "member_id", "period", "amount", "aid_before", "aid_after", "cause", "reason",
        "rulebook_code", "announced", "by_username", "at"))
    await raw.copy_records_to_table("claim_steps", records=[
        (uuid.uuid4(), a[1], "adjust", "system", "system（规则书更正）", f"{reason}（{a[5]} -> {a[6]}）", rulebook.code,
         a[6], now) for a in adjustments], columns=(
        "id", "claim_id", "decision", "by_user", "by_username", "reason", "rulebook_code", "aid_amount", "at"))
    await raw.execute("CREATE TEMP TABLE reassessed (id uuid PRIMARY KEY, aid numeric(14,2)) ON COMMIT DROP")
    await raw.copy_records_to_table("reassessed", records=[(c[0], c[4]) for c in changes])
    await raw.execute("UPDATE claims c SET aid_amount = r.aid, updated_at = now() FROM reassessed r WHERE c.id = r.id")
    await publish_many(session, MESSAGING, TOPIC_CLAIMS, [ClaimAdjusted(
        adjustment_id=str(a[0]), claim_id=str(a[1]), member_id=a[2], period=period, amount=a[4], aid_amount=a[6],
        reason=reason) for a in adjustments if a[10]])
    # A claim still in review follows its new amount to the level that gives final approval (never lower
    # than it has reached); usually few, so one by one.
    for claim_id, _, status, _, _ in changes:
        if status in (ClaimStatus.IN_REVIEW, ClaimStatus.RETURNED):
            claim = await session.get(Claim, claim_id, populate_existing=True)
            if claim is not None:
                reroute(claim, rulebook)
    return len(changes)
