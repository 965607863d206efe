"""第十五条 (seed 003): the cover loyalty grants is a real plan the member can claim on (issue #16 item 4).

Claims learns the grant from enrollment's member.loyalty_granted and adds the plan to the member's coverage of
the period; the grant may come before the coverage, twice, or be followed by a later copy of the coverage.
"""

from __future__ import annotations

import random
import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx

from deploy.people import certno as make_certno
from deploy.people import luhn_account
from services.claims.models import Coverage
from shared.events import LoyaltyGranted, MemberCovered
from tests.conftest import ServiceClient, apply_event
from tests.service.test_claims import TODAY, Branch, Member, claims, cover, get_claim, publish_period, short
from tests.service.test_notifications import covered_member, feed

GRANT = "major_accident_disability_cover"


def granted(member_id: str, period: str) -> LoyaltyGranted:
    return LoyaltyGranted(member_id=member_id, period=period, grant=GRANT,
                          periods_without_aid=["yn-15", "yn-16", "yn-17"])


async def accident(client: httpx.AsyncClient, member: Member, grade: str) -> httpx.Response:
    body: dict[str, Any] = {"member_id": member.member_id, "plan": GRANT, "grade": grade,
                            "event_date": (TODAY - timedelta(days=20)).isoformat()}
    return await client.post("/api/v1/claims", json=body, headers=member.branch.unit_agent())


async def test_a_member_without_the_grant_cannot_claim_on_it_a_member_with_it_can(
        rolled_back: ServiceClient) -> None:
    app, client = await claims(rolled_back)
    period = await publish_period(app)
    member = await cover(app, period)
    r = await accident(client, member, "8")
    assert r.status_code == 201 and r.json()["status"] == "rejected", r.text
    assert r.json()["rejection"]["code"] == "plan_not_joined"

    assert await apply_event(app, granted(member.member_id, period))
    r = await accident(client, member, "8")
    assert r.status_code == 201 and r.json()["status"] == "in_review", r.text
    assert r.json()["aid_amount"] == "6000.00"  # 八级伤残 in yunnan-18.yaml (ASSUMED amounts, 云医互〔2021〕3号)
    shown = await get_claim(client, r.json()["claim_id"], member.branch.agency_reviewer())
    assert shown["plan"] == GRANT and shown["diagnosis"]["name"] == "八级伤残"
    assert shown["approval"]["final_level"] == "office"  # 6,000 > 3,000: 第十条 as for any claim


async def test_a_grant_before_the_coverage_twice_and_through_a_later_copy_of_the_coverage_is_kept(
        rolled_back: ServiceClient) -> None:
    app, client = await claims(rolled_back)
    period = await publish_period(app)
    early = Member(member_id=f"M{short()}", certno="", period=period, branch=Branch())
    event = granted(early.member_id, period)
    envelope = event.envelope()
    assert await apply_event(app, event, envelope)  # before member.covered: kept, not lost
    assert not await apply_event(app, event, envelope)  # the same event again: applied once
    assert await apply_event(app, granted(early.member_id, period))  # a second grant event: still one plan
    member = await cover(app, period, early.branch)  # another member id: the early grant is not theirs
    early_covered = await cover_as(app, period, early)
    again = await cover_as(app, period, early)  # a later copy of the coverage keeps the granted plan
    async with app.state.db.transaction() as session:
        row = await session.get(Coverage, (early.member_id, period))
        assert row is not None and row.plans == ["inpatient", GRANT]
        other = await session.get(Coverage, (member.member_id, period))
        assert other is not None and other.plans == ["inpatient"]
    assert early_covered.member_id == again.member_id
    r = await accident(client, early_covered, "10")
    assert r.status_code == 201 and r.json()["aid_amount"] == "2000.00", r.text


async def cover_as(app: Any, period: str, member: Member) -> Member:
    """member.covered for a given member id (cover() makes a new one)."""
    rng = random.Random(uuid.uuid4().int)
    assert await apply_event(app, MemberCovered(
        member_id=member.member_id, period=period, plans=["inpatient"],
        coverage_from=TODAY - timedelta(days=180), coverage_to=TODAY + timedelta(days=180),
        name="李嫚", certno=make_certno(rng, region="530102"), sex="female", member_type="in_service", unit=member.branch.unit,
        unit_path=member.branch.path, bank_account=luhn_account(rng), bank_name="中国建设银行昆明盘龙支行",
        phone="13987654321", renewing=True, fee=Decimal("120.00")))
    return member


async def test_the_member_is_told_of_the_grant(rolled_back: ServiceClient) -> None:
    app, client = await rolled_back("notifications")
    member_id, _ = await covered_member(app)
    assert await apply_event(app, granted(member_id, "yn-18"))
    [latest, _] = await feed(client, member_id)
    assert latest["template"] == "loyalty_granted"
    assert "yn-15、yn-16、yn-17" in latest["text"] and "yn-18 期获赠" in latest["text"]
