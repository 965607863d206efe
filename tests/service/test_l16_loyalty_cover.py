"""第十五条 (seed 003): a loyalty cover enrollment withdraws (member.loyalty_revoked: aid found later in the chain)
leaves the member's coverage in claims unless a claim on it already exists, and the member is told
(issue #16 item 4). Versions keep a late or repeated grant from undoing a withdrawal. Each test runs rolled back
(``rolled_back``) and counts exactly its own rows."""

from __future__ import annotations

import re

from fastapi import FastAPI
from sqlalchemy import func, select

from services.claims.models import Coverage, LoyaltyCover
from shared.events import LoyaltyGranted, LoyaltyRevoked
from tests.conftest import ServiceClient, apply_event
from tests.service.test_c16_loyalty import GRANT, accident
from tests.service.test_claims import claims, cover, publish_period
from tests.service.test_notifications import covered_member, feed

CHAIN = ["yn-17", "yn-16", "yn-15"]


def granted(member_id: str, period: str, version: int) -> LoyaltyGranted:
    return LoyaltyGranted(member_id=member_id, period=period, grant=GRANT, periods_without_aid=CHAIN, version=version)


def withdrawn(member_id: str, period: str, version: int) -> LoyaltyRevoked:
    return LoyaltyRevoked(member_id=member_id, period=period, grant=GRANT, periods_without_aid=CHAIN,
                          aided_periods=["yn-16"], version=version)


async def plans(app: FastAPI, member_id: str, period: str) -> list[str]:
    async with app.state.db.transaction() as session:
        row = await session.get(Coverage, (member_id, period))
    assert row is not None
    return list(row.plans)


async def test_a_withdrawn_cover_leaves_the_coverage_and_cannot_be_claimed_on(rolled_back: ServiceClient) -> None:
    app, client = await claims(rolled_back)
    period = await publish_period(app)
    member = await cover(app, period)
    assert await apply_event(app, granted(member.member_id, period, 1))
    assert await plans(app, member.member_id, period) == ["inpatient", GRANT]
    assert await apply_event(app, withdrawn(member.member_id, period, 2))
    assert await plans(app, member.member_id, period) == ["inpatient"]
    r = await accident(client, member, "8")
    assert r.status_code == 201 and r.json()["status"] == "rejected", r.text
    assert r.json()["rejection"]["code"] == "plan_not_joined"
    assert await apply_event(app, granted(member.member_id, period, 1))  # the first grant again, late: nothing
    assert await plans(app, member.member_id, period) == ["inpatient"]
    assert await apply_event(app, granted(member.member_id, period, 3))  # granted again (the aid was revoked)
    assert await plans(app, member.member_id, period) == ["inpatient", GRANT]
    async with app.state.db.transaction() as session:
        assert (await session.execute(select(func.count()).select_from(LoyaltyCover).where(
            LoyaltyCover.member_id == member.member_id))).scalar_one() == 1


async def test_a_cover_already_claimed_on_stays_with_its_claim(rolled_back: ServiceClient) -> None:
    app, client = await claims(rolled_back)
    period = await publish_period(app)
    member = await cover(app, period)
    assert await apply_event(app, granted(member.member_id, period, 1))
    r = await accident(client, member, "10")
    assert r.status_code == 201 and r.json()["status"] == "in_review" and r.json()["aid_amount"] == "2000.00", r.text
    assert await apply_event(app, withdrawn(member.member_id, period, 2))
    assert await plans(app, member.member_id, period) == ["inpatient", GRANT]  # kept: the cover was used
    async with app.state.db.transaction() as session:
        kept = await session.get(LoyaltyCover, (member.member_id, period, GRANT))
        assert kept is not None and (kept.version, kept.withdrawn) == (2, False)


async def test_a_withdrawal_before_its_grant_is_not_undone_by_the_grant(rolled_back: ServiceClient) -> None:
    app, _ = await claims(rolled_back)
    period = await publish_period(app)
    member = await cover(app, period)
    revoke = withdrawn(member.member_id, period, 2)
    envelope = revoke.envelope()
    assert await apply_event(app, revoke, envelope)
    assert not await apply_event(app, revoke, envelope)  # the same event twice: applied once
    assert await apply_event(app, granted(member.member_id, period, 1))  # the older grant arrives late
    assert await plans(app, member.member_id, period) == ["inpatient"]
    other = await cover(app, period)
    assert await apply_event(app, granted(other.member_id, period, 0))  # an older producer's grant (version 0)
    assert await plans(app, other.member_id, period) == ["inpatient", GRANT]


async def test_the_member_is_told_of_the_withdrawal_without_any_id_number(rolled_back: ServiceClient) -> None:
    app, client = await rolled_back("notifications")
    member_id, _ = await covered_member(app)
    assert await apply_event(app, withdrawn(member_id, "yn-18", 2))
    [latest, first] = await feed(client, member_id)
    assert (latest["template"], first["template"]) == ("loyalty_revoked", "member_covered")
    assert "yn-16 期获得了补助" in latest["text"] and "yn-18 期获赠的意外伤害保障予以取消" in latest["text"]
    assert "第十五条" in latest["text"] and "照常办理" in latest["text"]
    assert re.search(r"\d{6,}", latest["text"]) is None
