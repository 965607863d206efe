"""A write sent again with the same Idempotency-Key is answered, not done twice (docs/ARCHITECTURE.md)."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select

from services.claims.models import Claim
from tests.conftest import ServiceClient
from tests.service.test_claims import claim_body, decide, setup


async def test_a_claim_sent_twice_with_one_key_is_stored_once_and_answered_the_same(
        rolled_back: ServiceClient) -> None:
    app, client, member = await setup(rolled_back)
    body = claim_body(member)
    headers = {**member.branch.unit_agent(user_id="agent-1"), "Idempotency-Key": f"k-{uuid.uuid4()}"}
    first = await client.post("/api/v1/claims", json=body, headers=headers)
    again = await client.post("/api/v1/claims", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first.headers
    async with app.state.db.transaction() as session:
        stored = await session.execute(select(func.count()).where(Claim.member_id == member.member_id))
        assert stored.scalar_one() == 1


async def test_one_key_for_a_different_request_is_refused(rolled_back: ServiceClient) -> None:
    _, client, member = await setup(rolled_back)
    headers = {**member.branch.unit_agent(user_id="agent-2"), "Idempotency-Key": f"k-{uuid.uuid4()}"}
    assert (await client.post("/api/v1/claims", json=claim_body(member), headers=headers)).status_code == 201
    other = await client.post("/api/v1/claims", json=claim_body(member, base="2000.00"), headers=headers)
    assert other.status_code == 422 and other.json()["code"] == "idempotency_key_reused"
    assert other.json()["errors"][0]["loc"] == ["header", "Idempotency-Key"]


async def test_keys_belong_to_their_caller(rolled_back: ServiceClient) -> None:
    _, client, member = await setup(rolled_back)
    key, body = f"k-{uuid.uuid4()}", claim_body(member)
    mine = await client.post("/api/v1/claims", json=body,
                             headers={**member.branch.unit_agent(user_id="agent-3"), "Idempotency-Key": key})
    theirs = await client.post("/api/v1/claims", json=body,
                               headers={**member.branch.unit_agent(user_id="agent-4"), "Idempotency-Key": key})
    # A second agent's request with the same key is a new command: here, a second claim on the same
    # settlement, refused as such rather than replaying someone else's answer.
    assert mine.json()["status"] == "in_review"
    assert theirs.json()["rejection"]["code"] == "duplicate_settlement"


async def test_a_failed_command_keeps_no_key_and_may_be_retried(rolled_back: ServiceClient) -> None:
    _, client, member = await setup(rolled_back)
    claim = (await client.post("/api/v1/claims", json=claim_body(member),
                               headers=member.branch.unit_agent())).json()
    key = {"Idempotency-Key": f"k-{uuid.uuid4()}"}
    reviewer = member.branch.agency_reviewer(user_id="rev-1")
    refused = await decide(client, claim["claim_id"], {**reviewer, **key}, decision="reject")  # no reason given
    assert refused.status_code == 422 and refused.json()["code"] == "reason_required"
    retried = await decide(client, claim["claim_id"], {**reviewer, **key}, decision="reject", reason="材料不全")
    assert retried.status_code == 200 and retried.json()["status"] == "rejected"
