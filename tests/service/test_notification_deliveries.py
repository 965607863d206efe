"""Messages that arrive (issue #13): SMS through the provider's HTTP API and e-mail through SMTP, sent by the
delivery worker, against a real aiosmtpd server and the real local SMS endpoint (deploy/messagesinks.py) on free
ports. The endpoint checks Aliyun's and Tencent's signatures as the providers would."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from fastapi import FastAPI

from deploy.infra import free_port
from deploy.messagesinks import MailSink, SmsSink
from services.notifications.delivery import Channels, deliver_due
from shared.events import ClaimApproved, MemberContactChanged, MemberCovered, PaymentFailed
from shared.settings import NotificationsSettings
from tests.conftest import ServiceClient, apply_event, token_for

KEY_ID, SECRET = "LTAI5tLocalTestKey", "local-test-secret-0123456789"


@pytest.fixture
def mail(tmp_path: Any) -> Iterator[MailSink]:
    sink = MailSink(free_port(), tmp_path / "mail")
    sink.start()
    yield sink
    sink.stop()


def sms_sink(tmp_path: Any, fail_with: int | None = None) -> SmsSink:
    sink = SmsSink(free_port(), tmp_path / "sms", secrets={KEY_ID: SECRET}, fail_with=fail_with)
    sink.start()
    return sink


def settings_for(app: FastAPI, mail: MailSink, sms: SmsSink, provider: str = "local", **extra: Any) -> Any:
    # one send at a time: a rolled-back test's sessions share one connection (sends at once:
    # test_delivery_concurrency.py, on the shared database)
    extra.setdefault("delivery_concurrency", 1)
    endpoint = f"{sms.url}/sms" if provider == "local" else f"{sms.url}/"
    return NotificationsSettings(
        local_stack=True, database_url=app.state.settings.database_url, smtp_port=mail.port, sms_provider=provider,
        sms_endpoint=endpoint, sms_access_key_id=KEY_ID, sms_access_key_secret=SECRET, sms_template_code="SMS_1",
        sms_app_id="1400000001", delivery_backoff_s=0, **extra)


async def drain(app: FastAPI, settings: NotificationsSettings, rounds: int = 1) -> None:
    channels = Channels.from_settings(settings)
    try:
        for _ in range(rounds):
            await deliver_due(app.state.db, settings, channels, batch=500)
    finally:
        await channels.http.aclose()


def new_phone() -> str:
    return "139" + "".join(random.choices("0123456789", k=8))


async def member_with_email(app: FastAPI, phone: str) -> tuple[str, str]:
    member_id, email = f"M{uuid.uuid4().hex[:10]}", f"z{uuid.uuid4().hex[:6]}@example.com"
    path = ["YN", "YN-KM", "YN-KM-WH", f"U{uuid.uuid4().hex[:6]}"]
    assert await apply_event(app, MemberCovered(
        member_id=member_id, period="yn-18-2026", plans=["inpatient"], coverage_from=date(2026, 1, 1),
        coverage_to=date(2026, 12, 31), name="李𠮷", certno="530102198803140217", sex="male",
        member_type="in_service", unit=path[-1], unit_path=path, bank_account="6222023562301238362",
        bank_name="中国工商银行昆明五华支行", phone=phone, renewing=True, fee=Decimal("120.00")))
    assert await apply_event(app, MemberContactChanged(
        member_id=member_id, bank_account="6222023562301238362", bank_name="中国工商银行昆明五华支行", phone=phone,
        name="李𠮷", previous_phone=phone, email=email))
    return member_id, email


def approved(member_id: str) -> ClaimApproved:
    return ClaimApproved(claim_id=str(uuid.uuid4()), member_id=member_id, period="yn-18-2026", plan="inpatient",
                         aid_amount=Decimal("1260.00"), rulebook_code="yn-18")


async def feed(app: FastAPI, client: Any, member_id: str) -> list[dict[str, Any]]:
    r = await client.get("/api/v1/me/notifications", headers=token_for("member", member_id=member_id))
    assert r.status_code == 200, r.text
    return list(r.json())


def mails_to(mail: MailSink, email: str) -> list[Any]:
    return [m for m in mail.messages if m["To"] == email]


@pytest.mark.parametrize("provider", ["local", "aliyun", "tencent"])
async def test_an_approval_arrives_by_sms_and_by_e_mail(rolled_back: ServiceClient, mail: MailSink,
                                                        tmp_path: Any, provider: str) -> None:
    app, client = await rolled_back("notifications")
    sms = sms_sink(tmp_path)
    try:
        phone = new_phone()
        member_id, email = await member_with_email(app, phone)
        assert await apply_event(app, approved(member_id))
        # Nothing is sent by the consumer: the deliveries wait, queued, for the worker.
        [latest, *_] = await feed(app, client, member_id)
        assert latest["template"] == "claim_approved"
        assert {(d["channel"], d["status"]) for d in latest["deliveries"]} == {
            ("in_app", "delivered"), ("sms", "queued"), ("email", "queued")}
        assert not [s for s in sms.received if phone in s["phone"]]

        await drain(app, settings_for(app, mail, sms, provider))
        texts = [s for s in sms.received if s["phone"].endswith(phone) and s["template"] == "claim_approved"]
        assert len(texts) == 1 and texts[0]["provider"] == provider
        assert "1260.00 元" in texts[0]["text"] and "6222023562301238362" not in texts[0]["text"]
        [message] = [m for m in mails_to(mail, email) if "1260.00 元" in m.get_content()]
        assert "已批准" in message.get_content() and message["Subject"]
        assert list((tmp_path / "mail").glob("*.eml")) and (tmp_path / "sms" / "sms.jsonl").exists()

        [latest, *_] = await feed(app, client, member_id)
        by_channel = {d["channel"]: d for d in latest["deliveries"]}
        assert by_channel["sms"]["status"] == "sent" and by_channel["sms"]["attempts"] == 1
        assert by_channel["email"]["status"] == "sent" and by_channel["email"]["last_error"] is None
        assert by_channel["sms"]["to"] == phone[:3] + "****" + phone[-4:]
        # Staff of the branch see the same delivery records.
        path = ["YN", "YN-KM"]
        r = await client.get("/api/v1/notifications", params={"member_id": member_id},
                             headers=token_for("office_reviewer", "YN-KM", tuple(path), "office"))
        assert r.status_code == 200 and r.json()[0]["deliveries"] == latest["deliveries"]
    finally:
        sms.stop()


async def test_a_failing_sms_endpoint_is_retried_then_the_delivery_fails_with_the_error(
        rolled_back: ServiceClient, mail: MailSink, tmp_path: Any) -> None:
    app, client = await rolled_back("notifications")
    sms = sms_sink(tmp_path, fail_with=503)
    try:
        phone = new_phone()
        member_id, _ = await member_with_email(app, phone)
        assert await apply_event(app, approved(member_id))
        settings = settings_for(app, mail, sms, "aliyun", delivery_max_attempts=3)
        await drain(app, settings)
        [latest, *_] = await feed(app, client, member_id)
        sms_delivery = next(d for d in latest["deliveries"] if d["channel"] == "sms")
        assert sms_delivery["status"] == "queued" and sms_delivery["attempts"] == 1
        assert "isv.BUSINESS_LIMIT_CONTROL" in sms_delivery["last_error"]
        await drain(app, settings, rounds=4)
        [latest, *_] = await feed(app, client, member_id)
        by_channel = {d["channel"]: d for d in latest["deliveries"]}
        assert by_channel["sms"]["status"] == "failed" and by_channel["sms"]["attempts"] == 3
        assert "isv.BUSINESS_LIMIT_CONTROL" in by_channel["sms"]["last_error"]
        assert by_channel["email"]["status"] == "sent"  # one channel failing does not hold the other
        assert not [s for s in sms.received if s["phone"] == phone]
    finally:
        sms.stop()


async def test_backoff_waits_before_the_next_attempt(rolled_back: ServiceClient, mail: MailSink,
                                                      tmp_path: Any) -> None:
    app, client = await rolled_back("notifications")
    sms = sms_sink(tmp_path, fail_with=500)
    try:
        member_id, _ = await member_with_email(app, new_phone())
        assert await apply_event(app, approved(member_id))
        settings = settings_for(app, mail, sms, "local", delivery_max_attempts=5)
        settings.delivery_backoff_s = 3600
        await drain(app, settings, rounds=3)  # the second and third rounds find nothing due
        [latest, *_] = await feed(app, client, member_id)
        sms_delivery = next(d for d in latest["deliveries"] if d["channel"] == "sms")
        assert sms_delivery["status"] == "queued" and sms_delivery["attempts"] == 1
        assert "HTTP 500" in sms_delivery["last_error"]
    finally:
        sms.stop()


async def test_preferences_turn_channels_off_except_for_payment_failures(
        rolled_back: ServiceClient, mail: MailSink, tmp_path: Any) -> None:
    app, client = await rolled_back("notifications")
    sms = sms_sink(tmp_path)
    try:
        phone = new_phone()
        member_id, email = await member_with_email(app, phone)
        headers = token_for("member", member_id=member_id)
        r = await client.get("/api/v1/me/notification-preferences", headers=headers)
        assert r.status_code == 200 and r.json()["sms"] is True and "payment_failed" in r.json()["always_sent"]
        r = await client.put("/api/v1/me/notification-preferences", json={"sms": False, "email": False},
                             headers=headers)
        assert r.status_code == 200 and r.json()["sms"] is False
        r = await client.put("/api/v1/me/notification-preferences", json={"sms": "maybe"}, headers=headers)
        assert r.status_code == 422
        staff = await client.put("/api/v1/me/notification-preferences", json={"sms": False},
                                 headers=token_for("unit_agent", "U1", ("YN", "U1"), "unit"))
        assert staff.status_code == 403

        claim = approved(member_id)
        assert await apply_event(app, claim)
        assert await apply_event(app, PaymentFailed(instruction_id=str(uuid.uuid4()), claim_id=claim.claim_id,
                                                    member_id=member_id, reason="账户已销户"))
        await drain(app, settings_for(app, mail, sms))
        messages = {m["template"]: m for m in await feed(app, client, member_id)}
        assert [d["channel"] for d in messages["claim_approved"]["deliveries"]] == ["in_app"]
        assert {d["channel"]: d["status"] for d in messages["payment_failed"]["deliveries"]} == {
            "in_app": "delivered", "sms": "sent", "email": "sent"}
        # (member_covered and contact_changed were queued before the member turned SMS and e-mail off)
        sent = [s["template"] for s in sms.received if s["phone"] == phone]
        assert "payment_failed" in sent and "claim_approved" not in sent
        bodies = [m.get_content() for m in mails_to(mail, email)]
        assert any("未成功" in b for b in bodies) and not any("已批准" in b for b in bodies)
    finally:
        sms.stop()


async def test_two_workers_never_send_the_same_delivery_twice(service_client: ServiceClient, mail: MailSink,
                                                              tmp_path: Any) -> None:
    # Shared database: three workers drain at once, each on its own connection (FOR UPDATE SKIP LOCKED).
    app, _ = await service_client("notifications")
    sms = sms_sink(tmp_path)
    try:
        phones = [new_phone() for _ in range(6)]
        for phone in phones:
            member_id, _ = await member_with_email(app, phone)
            assert await apply_event(app, approved(member_id))
        settings = settings_for(app, mail, sms)
        await asyncio.gather(drain(app, settings), drain(app, settings), drain(app, settings))
        for phone in phones:
            assert sorted(s["template"] for s in sms.received if s["phone"] == phone) == [
                "claim_approved", "contact_changed", "member_covered"]
    finally:
        sms.stop()
