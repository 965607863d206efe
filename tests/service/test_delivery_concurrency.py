"""The delivery worker sends several messages at once (issue #15): a provider answers in tens to hundreds of
milliseconds, so one at a time would cap a worker near 10 SMS a second. ``delivery_concurrency`` bounds how many
are in flight; each outcome is still recorded once, as soon as its send returns."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from deploy.messagesinks import MailSink, SmsSink
from tests.conftest import ServiceClient, apply_event
from tests.service.test_notification_deliveries import (  # noqa: F401  (mail: the fixture)
    approved,
    drain,
    feed,
    mail,
    member_with_email,
    new_phone,
    settings_for,
    sms_sink,
)


def slow(sink: SmsSink) -> dict[str, int]:
    """Make the local endpoint answer after a pause, counting the requests in flight at once."""
    seen = {"now": 0, "most": 0}
    lock = threading.Lock()
    handle = sink.handle

    def answer(path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
        with lock:
            seen["now"] += 1
            seen["most"] = max(seen["most"], seen["now"])
        try:
            time.sleep(0.15)
            return handle(path, headers, body)
        finally:
            with lock:
                seen["now"] -= 1

    sink.handle = answer  # type: ignore[method-assign]
    return seen


@pytest.mark.parametrize("concurrency", [1, 4])
async def test_messages_go_out_several_at_once_each_recorded_once(
        service_client: ServiceClient, mail: MailSink, tmp_path: Any, concurrency: int) -> None:
    # Shared database: sends at once record their outcomes on connections of their own.
    app, client = await service_client("notifications")
    sms = sms_sink(tmp_path)
    seen = slow(sms)
    try:
        phones = [new_phone() for _ in range(4)]
        members = []
        for phone in phones:
            member_id, _ = await member_with_email(app, phone)
            assert await apply_event(app, approved(member_id))
            members.append(member_id)
        await drain(app, settings_for(app, mail, sms, delivery_concurrency=concurrency))
        assert seen["most"] == concurrency  # 12 messages due: the bound is reached, never passed
        for phone, member_id in zip(phones, members, strict=True):
            assert sorted(s["template"] for s in sms.received if s["phone"] == phone) == [
                "claim_approved", "contact_changed", "member_covered"]
            for notification in await feed(app, client, member_id):
                [delivery] = [d for d in notification["deliveries"] if d["channel"] == "sms"]
                assert delivery["status"] == "sent" and delivery["attempts"] == 1
    finally:
        sms.stop()
