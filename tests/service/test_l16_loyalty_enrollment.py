"""第十五条 (seed 003) in enrollment, over a real PostgreSQL: the count of periods without aid follows the claims
service's revocations (claim.revoked), reversals (claim.rejected) and adjustments (claim.adjusted), per claim,
in any order and however often they arrive (issue #16 item 4). Aid appearing in a granted chain withdraws the
grant (member.loyalty_revoked); aid going grants it (member.loyalty_granted, once).

Each test runs rolled back (``rolled_back``) and counts exactly its own rows and events."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from services.enrollment.models import ClaimAidRow, LoyaltyGrant, MemberAid
from shared.events import ClaimAdjusted, ClaimApproved, ClaimRejected, ClaimRevoked, EventPayload
from shared.messaging import PoisonEvent
from tests.conftest import apply_event, token_for
from tests.service.test_enrollment import (
    World,
    admin,  # noqa: F401 (fixture used by name)
    enrol_and_pay,
    world,  # noqa: F401 (fixture used by name)
)
from tests.service.test_enrollment_lifecycle import events, loyalty_chain

GRANT = "major_accident_disability_cover"


def approved(claim: str, member: str, period: str, amount: str) -> ClaimApproved:
    return ClaimApproved(claim_id=claim, member_id=member, period=period, plan="inpatient",
                         aid_amount=Decimal(amount), rulebook_code=period)


def adjusted(claim: str, member: str, period: str, aid: str, change: str) -> ClaimAdjusted:
    return ClaimAdjusted(adjustment_id=str(uuid.uuid4()), claim_id=claim, member_id=member, period=period,
                         amount=Decimal(change), aid_amount=Decimal(aid), reason="同期前一次住院申请被撤销，重新核定")


def revoked(claim: str, member: str, period: str) -> ClaimRevoked:
    return ClaimRevoked(claim_id=claim, member_id=member, period=period, reason="伪造住院结算单（第十三条）")


def reversed_(claim: str, member: str, period: str) -> ClaimRejected:
    return ClaimRejected(claim_id=claim, member_id=member, period=period, code="settlement_reversed",
                         detail="医保部门已冲销该结算单。")


async def apply(w: World, *payloads: EventPayload) -> None:
    for payload in payloads:
        assert await apply_event(w.app, payload)


async def grants(w: World, period: str) -> dict[str, tuple[int, bool]]:
    """member id -> (version, live) of the period's grants."""
    async with w.app.state.db.transaction() as session:
        rows = (await session.execute(select(LoyaltyGrant).where(LoyaltyGrant.period == period))).scalars().all()
    return {str(g.member_id): (g.version, g.withdrawn_at is None) for g in rows}


async def aid_of(w: World, member: str, period: str) -> Decimal | None:
    async with w.app.state.db.transaction() as session:
        row = await session.get(MemberAid, (uuid.UUID(member), period))
    return None if row is None else row.aid_total


async def loyalty_events(w: World, period: str) -> list[tuple[str, str, int]]:
    """(type, member id, version) of the period's loyalty events, in the order they were published."""
    return [(kind.removeprefix("member.loyalty_"), e["member_id"], e["version"])
            for kind in ("member.loyalty_granted", "member.loyalty_revoked")
            for e in await events(w, kind) if e["period"] == period]


async def granted_chain(w: World) -> tuple[list[str], list[dict[str, Any]], list[str]]:
    """The chain of loyalty_chain with the 18th period's roster paid: A and B granted, C not (only in the 17th)."""
    periods, members, ids = await loyalty_chain(w)
    await enrol_and_pay(w, members, period=periods[3])
    a, b, _ = ids
    assert await grants(w, periods[3]) == {a: (1, True), b: (1, True)}
    return periods, members, ids


async def test_a_late_approval_withdraws_the_grant_and_its_revocation_grants_it_again(world: World) -> None:
    (p15, p16, p17, p18), _, (a, b, c) = await granted_chain(world)
    claim = str(uuid.uuid4())
    late = approved(claim, b, p16, "500.00")
    await apply(world, late)
    assert await grants(world, p18) == {a: (1, True), b: (2, False)}
    [event] = await events(world, "member.loyalty_revoked")
    assert event == {"member_id": b, "period": p18, "grant": GRANT, "periods_without_aid": [p17, p16, p15],
                     "aided_periods": [p16], "version": 2}
    envelope = late.envelope()
    await apply(world, approved(claim, b, p16, "500.00"))  # a second copy of the approval (another event id)
    assert await apply_event(world.app, late, envelope) and not await apply_event(world.app, late, envelope)
    assert await aid_of(world, b, p16) == Decimal("500.00")
    assert len(await events(world, "member.loyalty_revoked")) == 1

    await apply(world, revoked(claim, b, p16))  # 第十三条: the claim was a fraud, the member had no aid after all
    assert await aid_of(world, b, p16) == Decimal("0.00")
    assert await grants(world, p18) == {a: (1, True), b: (3, True)}
    assert sorted(await loyalty_events(world, p18)) == sorted([
        ("granted", a, 1), ("granted", b, 1), ("granted", b, 3), ("revoked", b, 2)])
    await apply(world, revoked(claim, b, p16))  # the revocation again: granted once
    assert len(await events(world, "member.loyalty_granted", member_id=b)) == 2
    assert c not in await grants(world, p18)


async def test_an_adjustment_before_its_approval_counts_and_a_reversal_ends_the_claims_aid(world: World) -> None:
    (_, p16, _, p18), _, (a, b, _) = await granted_chain(world)
    claim = str(uuid.uuid4())
    await apply(world, adjusted(claim, a, p16, "300.00", "-960.00"))  # arrives before its approval
    assert await grants(world, p18) == {a: (2, False), b: (1, True)}
    await apply(world, approved(claim, a, p16, "1260.00"))  # the older amount: the adjustment stays
    assert await aid_of(world, a, p16) == Decimal("300.00")
    async with world.app.state.db.transaction() as session:
        row = await session.get(ClaimAidRow, claim)
        assert row is not None and (row.aid, row.ended) == (Decimal("300.00"), False)
    await apply(world, reversed_(claim, a, p16))  # the bureau reversed the settlement
    assert await aid_of(world, a, p16) == Decimal("0.00")
    assert await grants(world, p18) == {a: (3, True), b: (1, True)}
    await apply(world, adjusted(claim, a, p16, "800.00", "500.00"))  # late: a reversed claim stays at 0
    assert await aid_of(world, a, p16) == Decimal("0.00")
    assert sorted(await loyalty_events(world, p18)) == sorted([
        ("granted", a, 1), ("granted", a, 3), ("granted", b, 1), ("revoked", a, 2)])


async def test_a_period_with_two_claims_is_without_aid_only_when_both_are_gone(world: World) -> None:
    (_, p16, p17, p18), _, (a, _, _) = await loyalty_chain(world)
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    await apply(world, approved(first, a, p16, "200.00"), approved(second, a, p17, "0.00"),
                approved(str(uuid.uuid4()), a, p16, "300.00"))
    await apply(world, approved(second, a, p17, "0.00"))
    assert await aid_of(world, a, p16) == Decimal("500.00")
    assert await aid_of(world, a, p17) == Decimal("0.00")  # an approved claim of 0.00 is no aid
    await apply(world, revoked(first, a, p16))
    assert await aid_of(world, a, p16) == Decimal("300.00")
    assert await grants(world, p18) == {}  # nobody covered in the 18th yet: nothing to grant
    assert await loyalty_events(world, p18) == []


async def test_aid_gone_before_the_roster_is_paid_counts_when_it_is(world: World) -> None:
    (_, p16, _, p18), members, (a, b, _) = await loyalty_chain(world)
    claim = str(uuid.uuid4())
    await apply(world, approved(claim, a, p16, "450.00"))
    await enrol_and_pay(world, members, period=p18)
    assert await grants(world, p18) == {b: (1, True)}
    await apply(world, reversed_(claim, a, p16))
    assert await grants(world, p18) == {a: (1, True), b: (1, True)}
    assert sorted(await loyalty_events(world, p18)) == sorted([("granted", a, 1), ("granted", b, 1)])


async def test_an_upward_adjustment_of_an_approval_of_no_money_withdraws_the_grant(world: World) -> None:
    (p15, p16, p17, p18), members, (a, b, _) = await loyalty_chain(world)
    claim = str(uuid.uuid4())
    await apply(world, approved(claim, b, p17, "0.00"))
    await enrol_and_pay(world, members, period=p18)
    assert await grants(world, p18) == {a: (1, True), b: (1, True)}
    await apply(world, adjusted(claim, b, p17, "640.00", "640.00"))  # a rulebook correction raised it
    assert await grants(world, p18) == {a: (1, True), b: (2, False)}
    [event] = await events(world, "member.loyalty_revoked")
    assert (event["member_id"], event["aided_periods"], event["periods_without_aid"]) == (b, [p17], [p17, p16, p15])
    for member, shown in ((a, 1), (b, 0)):  # the member's own page lists only a live grant
        me = await world.client.get("/api/v1/me", headers=token_for("member", member_id=member))
        assert me.status_code == 200 and len(me.json()["loyalty_grants"]) == shown, me.text


async def test_claim_events_enrollment_cannot_place_are_kept_out_or_dead_lettered(world: World) -> None:
    stranger = str(uuid.uuid4())  # a member enrollment does not know: the aid is kept, nothing is granted
    await apply(world, approved(str(uuid.uuid4()), stranger, world.period, "380.00"))
    assert await aid_of(world, stranger, world.period) == Decimal("380.00")
    refused = ClaimRejected(claim_id=str(uuid.uuid4()), member_id=stranger, period="", code="no_coverage",
                            detail="申请日不在任何一期的保障期内")
    await apply(world, refused)  # refused at intake, before any period was known: no aid anywhere
    with pytest.raises(PoisonEvent, match="not a member id"):
        await apply_event(world.app, approved(str(uuid.uuid4()), "M-1", world.period, "120.00"))
    async with world.app.state.db.transaction() as session:
        rows = (await session.execute(select(ClaimAidRow.claim_id, ClaimAidRow.aid).where(
            ClaimAidRow.period.in_([world.period, ""])))).all()
    assert [aid for _, aid in rows] == [Decimal("380.00")]
    assert [e for e in await world.outbox() if e["type"].startswith("member.loyalty_")] == []
