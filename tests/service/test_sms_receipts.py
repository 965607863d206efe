"""SMS delivery receipts (services/notifications/receipts.py): the provider's callback, in Aliyun's, Tencent's or
the local endpoint's shape, marks a sent SMS delivered or failed by the provider's reference; the URL's secret
guards it; repeats and unknown references change nothing."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from services.notifications.models import Delivery, Notification
from services.notifications.receipts import parse_report
from shared.events import MemberSignupCode
from tests.conftest import ServiceClient, apply_event


def test_each_providers_report_is_read() -> None:
    assert parse_report({"biz_id": "9001^0", "success": True, "err_code": "DELIVERED"}) == ("9001^0", True, "")
    assert parse_report({"biz_id": "9002^0", "success": False, "err_code": "MK:0001", "err_msg": "停机"})[1] is False
    assert parse_report({"sid": "2019:-1", "report_status": "SUCCESS", "errmsg": "DELIVRD"}) == ("2019:-1", True, "")
    assert parse_report({"sid": "2019:-2", "report_status": "FAIL", "errmsg": "MN:0001",
                         "description": "空号"}) == ("2019:-2", False, "MN:0001 空号")
    assert parse_report({"id": "abc", "status": "delivered"}) == ("abc", True, "")
    assert parse_report({"id": "abc", "status": "sent"}) is None and parse_report(["x"]) is None


async def sent_sms(app: object, ref: str) -> uuid.UUID:
    event = MemberSignupCode(member_id=str(uuid.uuid4()), phone="13612345678", code="102938",
                             expires_at=datetime.now(UTC) + timedelta(minutes=10))
    envelope = event.envelope()
    assert await apply_event(app, event, envelope)  # type: ignore[arg-type]
    async with app.state.db.transaction() as session:  # type: ignore[attr-defined]
        [delivery_id] = (await session.execute(select(Delivery.id).join(
            Notification, Notification.id == Delivery.notification_id).where(
            Notification.source_event_id == envelope.event_id))).scalars().all()
        await session.execute(update(Delivery).where(Delivery.id == delivery_id).values(
            status="sent", provider_ref=ref, attempts=1))
    return delivery_id


async def test_callbacks_mark_sent_messages_delivered_or_failed(rolled_back: ServiceClient,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    app, client = await rolled_back("notifications")
    monkeypatch.setattr(app.state.settings, "sms_receipt_token", "receipts-secret-7f3a")
    refs = {name: f"{name}-{uuid.uuid4().hex[:8]}" for name in ("aliyun", "tencent", "local", "bad")}
    ids = {name: await sent_sms(app, ref) for name, ref in refs.items()}
    url = "/api/v1/sms/receipts/receipts-secret-7f3a"

    assert (await client.post("/api/v1/sms/receipts/wrong", json=[])).status_code == 404
    r = await client.post(url, json=[
        {"biz_id": refs["aliyun"], "success": True, "err_code": "DELIVERED", "phone_number": "13612345678"},
        {"sid": refs["tencent"], "report_status": "SUCCESS", "errmsg": "DELIVRD", "mobile": "13612345678"},
        {"id": refs["local"], "status": "delivered"},
        {"sid": refs["bad"], "report_status": "FAIL", "errmsg": "MN:0001", "description": "用户关机"},
        {"biz_id": "nobody-knows-this", "success": True},
        "not a report"])
    assert r.status_code == 200, r.text
    assert r.json() == {"received": 6, "delivered": 3, "failed": 1}
    again = await client.post(url, json=[{"id": refs["local"], "status": "failed", "error": "late"}])
    assert again.json()["failed"] == 0  # a final state stays final

    async with app.state.db.transaction() as session:
        rows = {d.id: d for d in (await session.execute(select(Delivery).where(
            Delivery.id.in_(list(ids.values()))))).scalars()}
    assert {name: rows[i].status for name, i in ids.items()} == {
        "aliyun": "delivered", "tencent": "delivered", "local": "delivered", "bad": "failed"}
    assert "用户关机" in (rows[ids["bad"]].last_error or "")

    assert (await client.post(url, content=b"{not json")).status_code == 422


async def test_receipts_are_off_without_a_secret(rolled_back: ServiceClient) -> None:
    app, client = await rolled_back("notifications")
    assert app.state.settings.sms_receipt_token == ""
    r = await client.post("/api/v1/sms/receipts/anything", json=[{"id": "x", "status": "delivered"}])
    assert r.status_code == 404
