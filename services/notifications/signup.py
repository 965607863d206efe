"""The codes a member asks for in the app (issue #13): the sign-up code (``member.signup_code``, item 4) and the
code confirming a change of their own phone or bank account (``member.contact_code``, PATCH /me), both from
enrollment: one SMS to the phone enrollment names (the roster's; for a change, the one on file before it),
whatever the member's channel choices (they asked for it), never by e-mail.

The code must not be readable in any feed, the member's own or their unit's staff view of it: the message is
kept under ``signup-<member id hex>`` (``contact-<hex>`` for a change), a key no member id equals, so no feed query ever finds it, while the
delivery worker sends it and records its delivery like any other SMS.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.notifications.delivery import DeliveryChannel, DeliveryStatus
from services.notifications.models import Delivery, Notification
from shared.events import Envelope, EventPayload, MemberContactCode, MemberSignupCode
from shared.messaging import PoisonEvent

BEIJING = timezone(timedelta(hours=8))
TEMPLATE = "signup_code"
CONTACT_TEMPLATE = "contact_code"


def code_key(member_id: str, purpose: str = "signup") -> str:
    try:
        return f"{purpose}-{uuid.UUID(member_id).hex}"
    except ValueError:
        raise PoisonEvent(f"member_id {member_id!r} is not a member id") from None


def signup_text(code: str, expires_at_beijing: str) -> str:
    return (f"您正在注册职工医疗互助 App，验证码 {code}，{expires_at_beijing} 前有效。"
            "如非本人操作，请忽略本短信，切勿告诉他人。")


def contact_code_text(code: str, expires_at_beijing: str) -> str:
    return (f"您正在职工医疗互助 App 修改手机号或银行账号，验证码 {code}，{expires_at_beijing} 前有效。"
            "如非本人操作，请勿告诉他人，并联系本单位工会。")


async def signup_code(session: AsyncSession, envelope: Envelope, event: EventPayload) -> None:
    """A sign-up code or a contact-change code: one SMS, in no feed."""
    assert isinstance(event, MemberSignupCode | MemberContactCode)
    if event.expires_at <= datetime.now(UTC):
        return  # arrived after the code expired: a message the member can no longer use is not sent
    until = event.expires_at.astimezone(BEIJING).strftime("%H:%M")
    if isinstance(event, MemberContactCode):
        key, template, text = code_key(event.member_id, "contact"), CONTACT_TEMPLATE, contact_code_text(
            event.code, until)
    else:
        key, template, text = code_key(event.member_id), TEMPLATE, signup_text(event.code, until)
    created = (await session.execute(insert(Notification).values(
        source_event_id=envelope.event_id, member_id=key, channel="sms",
        to_phone=event.phone, template=template, text=text, status="recorded",
    ).on_conflict_do_nothing().returning(Notification.id))).scalar_one_or_none()
    if created is not None:
        await session.execute(insert(Delivery).values(
            id=uuid.uuid4(), notification_id=created, channel=DeliveryChannel.SMS, address=event.phone,
            status=DeliveryStatus.QUEUED, attempts=0))
