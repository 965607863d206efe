"""The sign-up code a member asked for in the app (issue #13 item 4, ``member.signup_code`` from enrollment): one
SMS to the phone the roster has, whatever the member's channel choices (they asked for it), never by e-mail.

The code must not be readable in any feed, the member's own or their unit's staff view of it: the message is
kept under ``signup-<member id hex>``, a key no member id equals, so no feed query ever finds it, while the
delivery worker sends it and records its delivery like any other SMS.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.notifications.delivery import DeliveryChannel, DeliveryStatus
from services.notifications.models import Delivery, Notification
from shared.events import Envelope, EventPayload, MemberSignupCode
from shared.messaging import PoisonEvent

BEIJING = timezone(timedelta(hours=8))
TEMPLATE = "signup_code"


def signup_key(member_id: str) -> str:
    try:
        return f"signup-{uuid.UUID(member_id).hex}"
    except ValueError:
        raise PoisonEvent(f"member_id {member_id!r} is not a member id") from None


def signup_text(code: str, expires_at_beijing: str) -> str:
    return (f"您正在注册职工医疗互助 App，验证码 {code}，{expires_at_beijing} 前有效。"
            "如非本人操作，请忽略本短信，切勿告诉他人。")


async def signup_code(session: AsyncSession, envelope: Envelope, event: EventPayload) -> None:
    assert isinstance(event, MemberSignupCode)
    if event.expires_at <= datetime.now(UTC):
        return  # arrived after the code expired: a message the member can no longer use is not sent
    until = event.expires_at.astimezone(BEIJING).strftime("%H:%M")
    created = (await session.execute(insert(Notification).values(
        source_event_id=envelope.event_id, member_id=signup_key(event.member_id), channel="sms",
        to_phone=event.phone, template=TEMPLATE, text=signup_text(event.code, until), status="recorded",
    ).on_conflict_do_nothing().returning(Notification.id))).scalar_one_or_none()
    if created is not None:
        await session.execute(insert(Delivery).values(
            id=uuid.uuid4(), notification_id=created, channel=DeliveryChannel.SMS, address=event.phone,
            status=DeliveryStatus.QUEUED, attempts=0))
