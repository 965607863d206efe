"""A member's own sign-up (services/enrollment/member_signup.py, issue #13 item 4): ID number + phone matched
against the roster, the same answer either way, rate-limited; the code by SMS only (notifications/signup.py),
never in a feed; wrong codes burn it; the account is linked to the member and audited."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from services.enrollment.models import MESSAGING
from services.notifications.models import Delivery, Notification
from shared.events import Envelope, MemberSignupCode
from tests.conftest import ServiceClient, apply_event, token_for
from tests.service.test_staff_lists import ADMIN, unit_with_members

SIGNUP = "/api/v1/member-accounts/signup"


async def codes_sent(app: FastAPI, member_id: str) -> list[dict[str, Any]]:
    outbox = MESSAGING.outbox
    async with app.state.db.transaction() as session:
        rows = (await session.execute(select(outbox.c.envelope).where(
            outbox.c.key == member_id, outbox.c.type == MemberSignupCode.TYPE).order_by(outbox.c.seq))).scalars().all()
    return list(rows)


async def member_of(client: httpx.AsyncClient, certno: str) -> str:
    [found] = (await client.get("/api/v1/members", params={"certno": certno}, headers=ADMIN)).json()
    return str(found["member_id"])


async def test_a_member_signs_up_with_the_code_sent_to_the_rosters_phone(rolled_back: ServiceClient) -> None:
    app, client = await rolled_back("enrollment")
    _, _, people, _ = await unit_with_members(client)
    someone = people[1]
    certno, phone = str(someone["certno"]), str(someone["phone"])
    member_id = await member_of(client, certno)

    matched = await client.post(SIGNUP, json={"certno": certno, "phone": phone})
    wrong_phone = await client.post(SIGNUP, json={"certno": certno, "phone": "13900000000"})
    nobody = await client.post(SIGNUP, json={"certno": "11010519491231002X", "phone": phone})
    assert matched.status_code == wrong_phone.status_code == nobody.status_code == 202, matched.text
    assert matched.json() == wrong_phone.json() == nobody.json()  # nothing tells who is a member
    [sent] = await codes_sent(app, member_id)  # one code, for the matching request only
    code = sent["payload"]["code"]
    assert sent["payload"]["phone"] == phone and len(code) == 6

    account = {"certno": certno, "phone": phone, "username": f"m{uuid.uuid4().hex[:8]}",
               "password": "yunnan-mutual-2026"}
    bad = await client.post(f"{SIGNUP}/confirm", json={**account, "code": f"{(int(code) + 1) % 10**6:06d}"})
    assert bad.status_code == 422 and bad.json()["code"] == "signup_code_invalid"
    stranger = await client.post(f"{SIGNUP}/confirm", json={**account, "certno": "11010519491231002X",
                                                            "code": code})
    assert stranger.status_code == 422 and stranger.json()["detail"] == bad.json()["detail"]

    made = await client.post(f"{SIGNUP}/confirm", json={**account, "code": code})
    assert made.status_code == 201, made.text
    assert made.json()["member_id"] == member_id and made.json()["role"] == "member"
    login = await client.post("/api/v1/auth/token", data={"username": account["username"],
                                                           "password": account["password"]})
    assert login.status_code == 200 and login.json()["member_id"] == member_id
    me = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {login.json()['access_token']}"})
    assert me.status_code == 200 and me.json()["name"] == someone["name"]
    again = await client.post(f"{SIGNUP}/confirm", json={**account, "code": code})
    assert again.status_code == 422  # a code is used once
    audit = (await client.get(f"/api/v1/members/{member_id}/audit", headers=ADMIN)).json()
    assert [a["action"] for a in audit] == ["member_account.signup"]
    assert all(code not in str(a) and account["password"] not in str(a) for a in audit)


async def test_wrong_codes_burn_a_code_and_requests_are_limited(service_client: ServiceClient) -> None:
    # Shared database: each wrong code is counted in its own committed transaction while the request's rolls back.
    app, client = await service_client("enrollment")
    _, _, people, _ = await unit_with_members(client)
    certno, phone = str(people[2]["certno"]), str(people[2]["phone"])
    member_id = await member_of(client, certno)
    assert (await client.post(SIGNUP, json={"certno": certno, "phone": phone})).status_code == 202
    [sent] = await codes_sent(app, member_id)
    code = sent["payload"]["code"]
    account = {"certno": certno, "phone": phone, "username": f"m{uuid.uuid4().hex[:8]}",
               "password": "yunnan-mutual-2026"}
    for _ in range(5):
        r = await client.post(f"{SIGNUP}/confirm", json={**account, "code": f"{(int(code) + 7) % 10**6:06d}"})
        assert r.status_code == 422
    burnt = await client.post(f"{SIGNUP}/confirm", json={**account, "code": code})
    assert burnt.status_code == 422 and burnt.json()["code"] == "signup_code_invalid"

    for _ in range(4):  # five requests an hour for one ID number, matched or not
        assert (await client.post(SIGNUP, json={"certno": certno, "phone": "13700000000"})).status_code == 202
    limited = await client.post(SIGNUP, json={"certno": certno, "phone": phone})
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) > 0
    assert limited.json()["code"] == "signup_too_many"
    bad = await client.post(SIGNUP, json={"certno": certno, "phone": "0871-6543210"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["loc"] == ["body", "phone"]


async def test_the_code_goes_by_sms_only_and_into_no_feed(rolled_back: ServiceClient) -> None:
    app, _ = await rolled_back("notifications")
    member_id = str(uuid.uuid4())
    from datetime import UTC, datetime, timedelta
    event = MemberSignupCode(member_id=member_id, phone="13812345678", code="482913",
                             expires_at=datetime.now(UTC) + timedelta(minutes=10))
    envelope = event.envelope()
    assert await apply_event(app, event, envelope)
    assert not await apply_event(app, event, Envelope(**envelope.model_dump()))  # twice: once
    async with app.state.db.transaction() as session:
        [(note, delivery)] = (await session.execute(
            select(Notification, Delivery).join(Delivery, Delivery.notification_id == Notification.id)
            .where(Notification.source_event_id == envelope.event_id))).all()
    assert delivery.channel == "sms" and delivery.address == "13812345678" and delivery.status == "queued"
    assert "482913" in note.text and note.member_id != member_id
    _, client = await rolled_back("notifications")
    feed = await client.get("/api/v1/me/notifications", headers=token_for("member", member_id=member_id))
    assert feed.status_code == 200 and "482913" not in feed.text

    late = MemberSignupCode(member_id=member_id, phone="13812345678", code="111111",
                            expires_at=datetime.now(UTC) - timedelta(minutes=1))
    late_envelope = late.envelope()
    assert await apply_event(app, late, late_envelope)
    async with app.state.db.transaction() as session:
        assert (await session.execute(select(Notification).where(
            Notification.source_event_id == late_envelope.event_id))).first() is None
