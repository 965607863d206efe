"""A member changes their own phone and bank account in the app (services/enrollment/member_contact.py, issue #13
item 1): a code sent by SMS to the phone on file, bound to the change asked for; wrong, expired, burnt codes and
too many requests refused; the change audited and announced as the unit agent's is (member.contact_changed:
payments holds the new account, notifications tells the member at the previous phone); theirs only."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select, update

from deploy.people import luhn_account
from services.enrollment.member_contact import ContactChangeRequest
from services.enrollment.models import MESSAGING, Member
from services.notifications.models import Delivery, Notification, Recipient
from shared.events import ClaimApproved, MemberContactChanged, MemberContactCode, MemberCovered
from tests.conftest import ServiceClient, apply_event, token_for
from tests.service.test_staff_lists import ADMIN, agent, unit_with_members

CODE_URL = "/api/v1/me/contact-change"


async def outbox(app: FastAPI, kind: str, member_id: str) -> list[dict[str, Any]]:
    table = MESSAGING.outbox
    async with app.state.db.transaction() as session:
        rows = (await session.execute(select(table.c.envelope).where(
            table.c.key == member_id, table.c.type == kind).order_by(table.c.seq))).scalars().all()
    return [dict(r["payload"]) for r in rows]


async def a_member(client: httpx.AsyncClient) -> tuple[dict[str, Any], str, dict[str, str], list[str]]:
    """A covered member of a new unit with a member token; also the unit's path."""
    path, _, people, _ = await unit_with_members(client)
    someone = people[1]
    [found] = (await client.get("/api/v1/members", params={"certno": someone["certno"]}, headers=ADMIN)).json()
    member_id = str(found["member_id"])
    return someone, member_id, token_for("member", member_id=member_id), path


async def last_code(app: FastAPI, member_id: str) -> str:
    return str((await outbox(app, MemberContactCode.TYPE, member_id))[-1]["code"])


def other(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


def masked(account: str) -> str:
    return account[:4] + "*" * (len(account) - 8) + account[-4:]


async def whole(client: httpx.AsyncClient, certno: str) -> dict[str, Any]:
    """The member's stored details, unmasked (the admin's on-purpose, audited reveal)."""
    [found] = (await client.get("/api/v1/members", params={"certno": certno}, headers=ADMIN)).json()
    r = await client.post(f"/api/v1/members/{found['member_id']}/reveal", headers=ADMIN,
                          json={"fields": ["phone", "bank_account"], "reason": "核对会员本人修改的联系方式"})
    assert r.status_code == 200, r.text
    return dict(r.json())


async def test_a_member_changes_phone_and_account_with_the_code_sent_to_the_phone_on_file(
        rolled_back: ServiceClient) -> None:
    app, client = await rolled_back("enrollment")
    someone, member_id, me, path = await a_member(client)
    new_account = luhn_account(random.Random(member_id), prefix="621700")
    change = {"phone": "13988776655", "bank_account": new_account, "bank_name": "中国建设银行昆明分行"}

    sent = await client.post(CODE_URL, headers=me, json=change)
    assert sent.status_code == 202, sent.text
    assert sent.json()["phone"] == someone["phone"][:3] + "****" + someone["phone"][-4:]
    [code_event] = await outbox(app, MemberContactCode.TYPE, member_id)
    assert code_event["phone"] == someone["phone"]  # the phone on file, not the new one
    code = code_event["code"]
    assert len(code) == 6 and code not in sent.text

    no_code = await client.patch("/api/v1/me", headers=me, json=change)
    assert no_code.status_code == 422 and no_code.json()["code"] == "code_required"
    assert no_code.json()["errors"][0]["loc"] == ["body", "code"]
    wrong = await client.patch("/api/v1/me", headers=me, json={**change, "code": other(code)})
    assert wrong.status_code == 422 and wrong.json()["code"] == "code_invalid"
    assert wrong.json()["errors"][0]["loc"] == ["body", "code"]
    # The code confirms the change it was sent for, not another account.
    swapped = await client.patch("/api/v1/me", headers=me, json={
        **change, "bank_account": luhn_account(random.Random(code)), "code": code})
    assert swapped.status_code == 422 and swapped.json()["code"] == "code_invalid"
    assert await outbox(app, "member.contact_changed", member_id) == []

    done = await client.patch("/api/v1/me", headers=me, json={**change, "code": code})
    assert done.status_code == 200, done.text
    assert done.json() == {"member_id": member_id, "bank_account": masked(new_account),
                           "bank_name": "中国建设银行昆明分行", "phone": "139****6655", "warnings": []}
    again = await client.patch("/api/v1/me", headers=me, json={**change, "code": code})
    assert again.status_code == 422 and again.json()["code"] == "code_invalid"  # a code is used once

    stored = await whole(client, str(someone["certno"]))
    assert (stored["phone"], stored["bank_account"]) == ("13988776655", new_account)
    shown = (await client.get("/api/v1/me", headers=me)).json()
    assert (shown["phone"], shown["bank_account"], shown["bank_name"]) == \
        ("139****6655", masked(new_account), "中国建设银行昆明分行")

    # Announced as the unit agent's change is: payments holds the new account, the member is told at the
    # phone they had (services/notifications/handlers.contact_changed).
    [changed] = await outbox(app, "member.contact_changed", member_id)
    assert (changed["phone"], changed["previous_phone"]) == ("13988776655", someone["phone"])
    assert (changed["bank_account"], changed["bank_name"]) == (new_account, "中国建设银行昆明分行")
    assert changed["member_version"] == 2 and changed["changed_by"]  # enrolled, then this change

    audit = (await client.get(f"/api/v1/members/{member_id}/audit", headers=agent(path))).json()
    [entry] = [a for a in audit if a["action"] == "member.contact_change"]
    assert entry["detail"]["by_role"] == "member"
    assert entry["detail"]["after"] == {"bank_account": masked(new_account), "bank_name": "中国建设银行昆明分行",
                                        "phone": "139****6655"}
    assert entry["detail"]["before"]["bank_account"] == masked(str(someone["bank_account"]))
    for secret in (new_account, str(someone["bank_account"]), "13988776655", str(someone["phone"]), code):
        assert secret not in str(audit)


async def test_only_the_phone_and_a_passbook_account_with_a_warning(rolled_back: ServiceClient) -> None:
    app, client = await rolled_back("enrollment")
    someone, member_id, me, _ = await a_member(client)
    assert (await client.post(CODE_URL, headers=me, json={"phone": "15012345678"})).status_code == 202
    r = await client.patch("/api/v1/me", headers=me, json={"phone": "15012345678",
                                                            "code": await last_code(app, member_id)})
    assert r.status_code == 200, r.text
    assert r.json()["phone"] == "150****5678" and r.json()["bank_account"] == masked(str(someone["bank_account"]))
    # The next code goes to the new phone, now the one on file.
    good = luhn_account(random.Random(someone["name"]))
    passbook = good[:-1] + str((int(good[-1]) + 1) % 10)
    change = {"bank_account": passbook, "bank_name": "中国农业银行昆明分行"}
    assert (await client.post(CODE_URL, headers=me, json=change)).status_code == 202
    assert (await outbox(app, MemberContactCode.TYPE, member_id))[-1]["phone"] == "15012345678"
    r = await client.patch("/api/v1/me", headers=me, json={**change, "code": await last_code(app, member_id)})
    assert r.status_code == 200, r.text
    assert [(w["loc"], w["code"]) for w in r.json()["warnings"]] == [(["body", "bank_account"], "bank_account_luhn")]


async def test_details_are_checked_as_the_unit_agents_are(rolled_back: ServiceClient) -> None:
    _, client = await rolled_back("enrollment")
    _, _, me, _ = await a_member(client)
    for body, field in (({"phone": "0871-6543210"}, "phone"), ({"phone": "12345678901"}, "phone"),
                        ({"bank_account": "6217 0000 1234", "bank_name": "富滇银行"}, "bank_account"),
                        ({"bank_account": "123456789", "bank_name": "富滇银行"}, "bank_account")):
        for r in (await client.post(CODE_URL, headers=me, json=body),
                  await client.patch("/api/v1/me", headers=me, json={**body, "code": "123456"})):
            assert r.status_code == 422, r.text
            assert r.json()["errors"][0]["loc"] == ["body", field], r.text
    alone = await client.post(CODE_URL, headers=me, json={"bank_account": luhn_account(random.Random(1))})
    assert alone.status_code == 422  # an account without its bank
    nothing = await client.post(CODE_URL, headers=me, json={})
    assert nothing.status_code == 422
    stranger = await client.post(CODE_URL, headers=me, json={"phone": "13800001111", "email": "a@b.cn"})
    assert stranger.status_code == 422  # the e-mail is the unit agent's to change, not this endpoint's


async def test_an_expired_code_is_refused(rolled_back: ServiceClient) -> None:
    app, client = await rolled_back("enrollment")
    _, member_id, me, _ = await a_member(client)
    change = {"phone": "13700001234"}
    assert (await client.post(CODE_URL, headers=me, json=change)).status_code == 202
    code = await last_code(app, member_id)
    async with app.state.db.transaction() as session:
        await session.execute(update(ContactChangeRequest).where(
            ContactChangeRequest.member_id == uuid.UUID(member_id)).values(
            expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    r = await client.patch("/api/v1/me", headers=me, json={**change, "code": code})
    assert r.status_code == 422 and r.json()["code"] == "code_invalid"
    assert await outbox(app, "member.contact_changed", member_id) == []


async def test_five_wrong_codes_burn_the_code(service_client: ServiceClient) -> None:
    # Shared database: each wrong code is counted in its own committed transaction while the request's rolls back.
    app, client = await service_client("enrollment")
    _, member_id, me, _ = await a_member(client)
    change = {"phone": "13700005678"}
    assert (await client.post(CODE_URL, headers=me, json=change)).status_code == 202
    code = await last_code(app, member_id)
    for _ in range(5):
        r = await client.patch("/api/v1/me", headers=me, json={**change, "code": other(code)})
        assert r.status_code == 422 and r.json()["code"] == "code_invalid"
    burnt = await client.patch("/api/v1/me", headers=me, json={**change, "code": code})
    assert burnt.status_code == 422 and burnt.json()["code"] == "code_invalid"
    assert await outbox(app, "member.contact_changed", member_id) == []
    async with app.state.db.transaction() as session:
        [attempts] = (await session.execute(select(ContactChangeRequest.attempts).where(
            ContactChangeRequest.member_id == uuid.UUID(member_id)))).scalars().all()
    assert attempts == 6  # every try counted, the right code after the fifth wrong one too


async def test_code_requests_are_limited_per_member(rolled_back: ServiceClient) -> None:
    app, client = await rolled_back("enrollment")
    _, member_id, me, _ = await a_member(client)
    for n in range(5):
        r = await client.post(CODE_URL, headers=me, json={"phone": f"1370000{n:04d}"})
        assert r.status_code == 202, r.text
    limited = await client.post(CODE_URL, headers=me, json={"phone": "13700009999"})
    assert limited.status_code == 429 and limited.json()["code"] == "contact_code_too_many"
    assert 3500 < int(limited.headers["Retry-After"]) <= 3600
    assert len(await outbox(app, MemberContactCode.TYPE, member_id)) == 5
    # The newest code is the live one; it still works.
    r = await client.patch("/api/v1/me", headers=me, json={"phone": "13700000004",
                                                            "code": await last_code(app, member_id)})
    assert r.status_code == 200, r.text


async def test_another_members_token_or_staff_cannot_change_this_member(rolled_back: ServiceClient) -> None:
    app, client = await rolled_back("enrollment")
    someone, member_id, me, path = await a_member(client)
    intruder_id = str(uuid.uuid4())
    [other_found] = [m for m in (await client.get(f"/api/v1/units/{path[3]}/members", headers=agent(path),
                                                  params={"limit": 50})).json()["items"]
                     if m["member_id"] != member_id][:1]
    intruder = token_for("member", member_id=other_found["member_id"], user_id=intruder_id)
    change = {"phone": "13655554444"}
    assert (await client.post(CODE_URL, headers=me, json=change)).status_code == 202
    code = await last_code(app, member_id)
    # The other member's token reaches only their own record: this member's code is not theirs.
    stolen = await client.patch("/api/v1/me", headers=intruder, json={**change, "code": code})
    assert stolen.status_code == 422 and stolen.json()["code"] == "code_invalid"
    assert await outbox(app, "member.contact_changed", other_found["member_id"]) == []
    assert (await whole(client, str(someone["certno"])))["phone"] == someone["phone"]
    # A member token naming no member, and staff, are refused.
    for nobody in (token_for("member", member_id=str(uuid.uuid4())), token_for("member", member_id="M-1")):
        assert (await client.post(CODE_URL, headers=nobody, json=change)).status_code == 404
        assert (await client.patch("/api/v1/me", headers=nobody, json={**change, "code": code})).status_code == 404
    for staff in (agent(path), ADMIN, token_for("finance", path[0], (path[0],), "centre")):
        assert (await client.post(CODE_URL, headers=staff, json=change)).status_code == 403
        assert (await client.patch("/api/v1/me", headers=staff, json={**change, "code": code})).status_code == 403
    assert (await client.patch("/api/v1/me", json={**change, "code": code})).status_code == 401
    # The member's own code still works after all that.
    r = await client.patch("/api/v1/me", headers=me, json={**change, "code": code})
    assert r.status_code == 200, r.text


async def test_the_contact_code_goes_by_sms_only_and_into_no_feed(rolled_back: ServiceClient) -> None:
    app, _ = await rolled_back("notifications")
    member_id = str(uuid.uuid4())
    event = MemberContactCode(member_id=member_id, phone="13812345678", code="604217",
                              expires_at=datetime.now(UTC) + timedelta(minutes=10))
    envelope = event.envelope()
    assert await apply_event(app, event, envelope)
    assert not await apply_event(app, event, envelope)  # twice: once
    async with app.state.db.transaction() as session:
        [(note, delivery)] = (await session.execute(
            select(Notification, Delivery).join(Delivery, Delivery.notification_id == Notification.id)
            .where(Notification.source_event_id == envelope.event_id))).all()
    assert (delivery.channel, delivery.address, delivery.status) == ("sms", "13812345678", "queued")
    assert "604217" in note.text and "修改手机号或银行账号" in note.text and note.member_id != member_id
    _, client = await rolled_back("notifications")
    feed = await client.get("/api/v1/me/notifications", headers=token_for("member", member_id=member_id))
    assert feed.status_code == 200 and "604217" not in feed.text


async def test_a_member_with_no_phone_on_file_is_sent_to_their_unit_agent(rolled_back: ServiceClient) -> None:
    app, client = await rolled_back("enrollment")
    _, member_id, me, _ = await a_member(client)
    async with app.state.db.transaction() as session:
        await session.execute(update(Member).where(Member.id == uuid.UUID(member_id)).values(phone=""))
    r = await client.post(CODE_URL, headers=me, json={"phone": "13811112222"})
    assert r.status_code == 409 and r.json()["code"] == "no_phone_on_file"
    assert await outbox(app, MemberContactCode.TYPE, member_id) == []


async def test_the_members_own_change_holds_the_aid_in_payments_and_is_told_at_the_previous_phone(
        rolled_back: ServiceClient) -> None:
    enrollment, client = await rolled_back("enrollment")
    someone, member_id, me, path = await a_member(client)
    [covered] = await outbox(enrollment, MemberCovered.TYPE, member_id)
    payments, pay_client = await rolled_back("payments")
    notifications, _ = await rolled_back("notifications")
    assert await apply_event(payments, MemberCovered.model_validate(covered))
    assert await apply_event(notifications, MemberCovered.model_validate(covered))
    claim_id = str(uuid.uuid4())
    assert await apply_event(payments, ClaimApproved(claim_id=claim_id, member_id=member_id, period=covered["period"],
                                                     plan="inpatient", aid_amount=Decimal("2460.00"),
                                                     rulebook_code="yn-18"))
    finance = token_for("finance", path[0], (path[0],), "centre")

    async def instruction() -> dict[str, Any]:
        r = await pay_client.get("/api/v1/payment-instructions", params={"claim_id": claim_id}, headers=finance)
        assert r.status_code == 200, r.text
        [found] = r.json()
        return dict(found)

    assert (await instruction())["status"] == "pending"
    new_account = luhn_account(random.Random(claim_id), prefix="621700")
    change = {"phone": "13577778888", "bank_account": new_account, "bank_name": "富滇银行昆明分行"}
    assert (await client.post(CODE_URL, headers=me, json=change)).status_code == 202
    r = await client.patch("/api/v1/me", headers=me, json={**change, "code": await last_code(enrollment, member_id)})
    assert r.status_code == 200, r.text
    [changed] = await outbox(enrollment, MemberContactChanged.TYPE, member_id)

    # Payments: the aid waits on the new account until finance confirms it (issue #9, account_change_hold_days).
    assert await apply_event(payments, MemberContactChanged.model_validate(changed))
    held = await instruction()
    assert (held["status"], held["account"]) == ("held", masked(new_account))
    # Notifications: the member is told at the phone they had; later messages go to the new one.
    assert await apply_event(notifications, MemberContactChanged.model_validate(changed))
    async with notifications.state.db.transaction() as session:
        [note] = (await session.execute(select(Notification).where(
            Notification.member_id == member_id, Notification.template == "contact_changed"))).scalars().all()
        deliveries = (await session.execute(select(Delivery).where(
            Delivery.notification_id == note.id))).scalars().all()
        recipient = await session.get(Recipient, member_id)
    assert [(d.channel, d.address) for d in deliveries if d.channel == "sms"] == [("sms", someone["phone"])]
    assert recipient is not None and recipient.phone == "13577778888"
    for secret in (new_account, str(someone["certno"]), "13577778888"):
        assert secret not in note.text
