"""Messages to staff: the unit agent is told what to fix, reviewers what is overdue, and nobody else sees them."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal

from shared.events import ClaimAdjusted, ClaimOverdue, PaymentFailed
from tests.conftest import ServiceClient, apply_event, token_for
from tests.service.test_notifications import covered_member, feed


async def test_a_failed_transfer_tells_the_members_unit_agent_what_to_fix(rolled_back: ServiceClient) -> None:
    app, client = await rolled_back("notifications")
    member_id, path = await covered_member(app)
    claim_id = str(uuid.uuid4())
    assert await apply_event(app, PaymentFailed(instruction_id=str(uuid.uuid4()), claim_id=claim_id,
                                                member_id=member_id, reason="账户已销户"))
    agent = token_for("unit_agent", path[-1], tuple(path), "unit")
    messages = (await client.get("/api/v1/staff/notifications", headers=agent)).json()
    assert [m["template"] for m in messages] == ["payment_failed_fix"]
    assert "账户已销户" in messages[0]["text"] and "张伟" in messages[0]["text"]
    assert messages[0]["subject"] == claim_id
    other_unit = token_for("unit_agent", f"U{uuid.uuid4().hex[:6]}", (*path[:3], "elsewhere"), "unit")
    assert (await client.get("/api/v1/staff/notifications", headers=other_unit)).json() == []
    reviewer = token_for("agency_reviewer", path[2], tuple(path[:3]), "agency_point")
    assert (await client.get("/api/v1/staff/notifications", headers=reviewer)).json() == []
    # The member hears of it too, in their own words.
    assert (await feed(client, member_id))[0]["template"] == "payment_failed"


async def test_an_overdue_claim_reminds_its_level_and_an_escalation_reaches_the_level_above(
        rolled_back: ServiceClient) -> None:
    app, client = await rolled_back("notifications")
    member_id, path = await covered_member(app)
    claim_id = str(uuid.uuid4())
    reminder = ClaimOverdue(claim_id=claim_id, member_id=member_id, level="agency_point", org=path[2],
                            due_date=date(2026, 11, 30), kind="reminder")
    escalation = ClaimOverdue(claim_id=claim_id, member_id=member_id, level="office", org=path[1],
                              due_date=date(2026, 11, 30), kind="escalation")
    envelope = reminder.envelope()
    assert await apply_event(app, reminder, envelope)
    assert not await apply_event(app, reminder, envelope)  # redelivered: one message, not two
    assert await apply_event(app, escalation)
    agency = token_for("agency_reviewer", path[2], tuple(path[:3]), "agency_point")
    office = token_for("office_reviewer", path[1], tuple(path[:2]), "office")
    assert [m["template"] for m in (await client.get("/api/v1/staff/notifications", headers=agency)).json()] == [
        "claim_overdue"]
    office_messages = (await client.get("/api/v1/staff/notifications", headers=office)).json()
    assert [m["template"] for m in office_messages] == ["claim_escalated"]
    assert "2026-11-30" in office_messages[0]["text"]


async def test_a_re_assessment_tells_the_member_of_a_top_up_or_a_recovery(rolled_back: ServiceClient) -> None:
    app, client = await rolled_back("notifications")
    member_id, _ = await covered_member(app)
    for amount in ("260.00", "-100.00"):
        assert await apply_event(app, ClaimAdjusted(
            adjustment_id=str(uuid.uuid4()), claim_id=str(uuid.uuid4()), member_id=member_id, period="yn-18",
            amount=Decimal(amount), aid_amount=Decimal("360.00"), reason="前一次住院申请被撤销"))
    messages = await feed(client, member_id)
    assert [m["template"] for m in messages[:2]] == ["claim_recovery", "claim_topped_up"]
    assert "100.00 元需要退回" in messages[0]["text"] and "补发 260.00 元" in messages[1]["text"]
