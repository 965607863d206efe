"""Notifications (docs/API.md "Notifications (8004)"): one Chinese message per event, only to whom it concerns."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal
from typing import Any

import httpx
from fastapi import FastAPI

from shared.events import ClaimApproved, MemberCovered
from tests.conftest import ServiceClient, apply_event, token_for


def short() -> str:
    return uuid.uuid4().hex[:8]


def branch() -> list[str]:
    return [f"C{short()}", f"O{short()}", f"A{short()}", f"U{short()}"]


def covered(member_id: str, path: list[str]) -> MemberCovered:
    return MemberCovered(
        member_id=member_id, period="yn-18", plans=["inpatient"], coverage_from=date(2026, 1, 1),
        coverage_to=date(2026, 12, 31), name="张伟", certno="530102199001011234", sex="male",
        member_type="in_service", unit=path[-1], unit_path=path, bank_account="6222021234567890123",
        bank_name="中国工商银行昆明五华支行", phone="13712345678", renewing=True, fee=Decimal("120.00"))


def approved(member_id: str, aid: str = "3460.00") -> ClaimApproved:
    return ClaimApproved(claim_id=str(uuid.uuid4()), member_id=member_id, period="yn-18", plan="inpatient",
                         aid_amount=Decimal(aid), rulebook_code="yn-18")


def member(member_id: str) -> dict[str, str]:
    return token_for("member", member_id=member_id)


async def feed(client: httpx.AsyncClient, member_id: str) -> list[dict[str, Any]]:
    r = await client.get("/api/v1/me/notifications", headers=member(member_id))
    assert r.status_code == 200, r.text
    return list(r.json())


async def covered_member(app: FastAPI) -> tuple[str, list[str]]:
    member_id, path = f"M{short()}", branch()
    assert await apply_event(app, covered(member_id, path))
    return member_id, path


async def test_a_member_reads_the_approval_with_its_amount_newest_first(rolled_back: ServiceClient) -> None:
    app, client = await rolled_back("notifications")
    member_id, _ = await covered_member(app)
    assert await apply_event(app, approved(member_id))
    messages = await feed(client, member_id)
    assert [m["template"] for m in messages] == ["claim_approved", "member_covered"]
    assert "已批准" in messages[0]["text"] and "3460.00 元" in messages[0]["text"]
    assert "张伟" in messages[1]["text"] and "yn-18" in messages[1]["text"]
    assert messages[0]["created_at"] >= messages[1]["created_at"]
    assert all(m["read_at"] is None and m["channel"] == "in_app" for m in messages)


async def test_an_approval_of_0_says_so_without_promising_a_transfer(rolled_back: ServiceClient) -> None:
    app, client = await rolled_back("notifications")
    member_id, _ = await covered_member(app)
    assert await apply_event(app, approved(member_id, "0.00"))
    [latest, _] = await feed(client, member_id)
    assert latest["template"] == "claim_approved_zero" and "0 元" in latest["text"]
    assert "银行账户" not in latest["text"]


async def test_another_member_sees_none_of_it(rolled_back: ServiceClient) -> None:
    app, client = await rolled_back("notifications")
    member_id, _ = await covered_member(app)
    assert await apply_event(app, approved(member_id))
    other, _ = await covered_member(app)
    assert [m["template"] for m in await feed(client, other)] == ["member_covered"]
    assert await feed(client, f"M{short()}") == []
    staff_as_member = await client.get("/api/v1/me/notifications",
                                       headers=token_for("unit_agent", "U1", ("C1", "O1", "A1", "U1"), "unit"))
    assert staff_as_member.status_code == 403


async def test_staff_of_the_branch_read_a_members_messages_and_other_branches_get_404(
        rolled_back: ServiceClient) -> None:
    app, client = await rolled_back("notifications")
    member_id, path = await covered_member(app)
    assert await apply_event(app, approved(member_id))
    for headers in (token_for("unit_agent", path[3], tuple(path), "unit"),
                    token_for("office_reviewer", path[1], tuple(path[:2]), "office")):
        r = await client.get("/api/v1/notifications", params={"member_id": member_id}, headers=headers)
        assert r.status_code == 200, r.text
        assert [m["template"] for m in r.json()] == ["claim_approved", "member_covered"]

    other = branch()
    r = await client.get("/api/v1/notifications", params={"member_id": member_id},
                         headers=token_for("unit_agent", other[3], tuple(other), "unit"))
    assert r.status_code == 404 and r.json()["code"] == "member_not_found"
    r = await client.get("/api/v1/notifications", params={"member_id": f"M{short()}"},
                         headers=token_for("unit_agent", path[3], tuple(path), "unit"))
    assert r.status_code == 404


async def test_the_same_event_delivered_twice_is_one_message(rolled_back: ServiceClient) -> None:
    app, client = await rolled_back("notifications")
    member_id, _ = await covered_member(app)
    event = approved(member_id)
    envelope = event.envelope()
    assert await apply_event(app, event, envelope)
    assert not await apply_event(app, event, envelope)
    assert [m["template"] for m in await feed(client, member_id)] == ["claim_approved", "member_covered"]


async def test_marking_a_message_read_sets_read_at_for_its_member_only(rolled_back: ServiceClient) -> None:
    app, client = await rolled_back("notifications")
    member_id, _ = await covered_member(app)
    assert await apply_event(app, approved(member_id))
    latest = (await feed(client, member_id))[0]
    notification_id = latest["notification_id"]

    other, _ = await covered_member(app)
    r = await client.post(f"/api/v1/me/notifications/{notification_id}/read", headers=member(other))
    assert r.status_code == 404

    r = await client.post(f"/api/v1/me/notifications/{notification_id}/read", headers=member(member_id))
    assert r.status_code == 200, r.text
    assert r.json()["read_at"] is not None
    [stored, older] = await feed(client, member_id)
    assert stored["notification_id"] == notification_id and stored["read_at"] == r.json()["read_at"]
    assert older["read_at"] is None

    r = await client.post(f"/api/v1/me/notifications/{uuid.uuid4()}/read", headers=member(member_id))
    assert r.status_code == 404


async def test_marking_a_malformed_notification_id_read_is_a_field_error_not_a_server_error(
        rolled_back: ServiceClient) -> None:
    _, client = await rolled_back("notifications")
    r = await client.post("/api/v1/me/notifications/not-a-uuid/read", headers=member(f"M{short()}"))
    assert r.status_code == 422
    assert r.json()["errors"][0]["loc"] == ["path", "notification_id"]
