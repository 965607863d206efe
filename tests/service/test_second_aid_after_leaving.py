"""Second aid after the member left (seed 000; 第十四条 ends rights from the leaving date, 第十三条 fraud): a claim
for the period still counts the stays before the member left, but every other intake check still applies. The
period claim used to clear the coverage_ended refusal after screening, and screening stops at that refusal, so a
member who left and had lost the right to claim for fraud was assessed anyway."""

from __future__ import annotations

import uuid
from datetime import timedelta

from fastapi import FastAPI
from sqlalchemy import update

from services.claims.models import ClaimRightRevocation, Coverage
from tests.conftest import ServiceClient
from tests.service.test_claims import TODAY, Member
from tests.service.test_s16_second_aid import member_of, second_aid


async def left_ten_days_ago(app: FastAPI, member: Member) -> None:
    """The member's coverage of the period ended ten days ago (第十四条: as member.coverage_ended writes it)."""
    async with app.state.db.transaction() as session:
        await session.execute(update(Coverage).where(
            Coverage.member_id == member.member_id, Coverage.period == member.period).values(
            ended_on=TODAY - timedelta(days=10)))


async def test_a_member_who_left_and_lost_the_right_for_fraud_gets_no_second_aid(
        rolled_back: ServiceClient) -> None:
    app, client = await rolled_back("claims")
    member = await member_of(app, name="字文芳", sex="female")
    await left_ten_days_ago(app, member)
    async with app.state.db.transaction() as session:
        session.add(ClaimRightRevocation(member_id=member.member_id, period=member.period, claim_id=uuid.uuid4(),
                                         reason="伪造票据", by_username="centre"))
    claim = await second_aid(client, member)
    assert claim["status"] == "rejected" and claim["rejection"]["code"] == "revoked_for_fraud"


async def test_a_member_who_left_is_still_screened_then_assessed_for_the_period(rolled_back: ServiceClient) -> None:
    app, client = await rolled_back("claims")
    member = await member_of(app, name="岳曦", sex="male")
    await left_ten_days_ago(app, member)
    claim = await second_aid(client, member)
    # no stays: nothing remains to aid, but the claim is taken to review (not refused as coverage_ended)
    assert claim["status"] == "in_review" and claim["rejection"] is None and claim["aid_amount"] == "0.00"
