"""Notifications' HTTP endpoints (docs/API.md "Notifications (8004)")."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from services.notifications.delivery import MANDATORY_TEMPLATES, DeliveryChannel, DeliveryStatus
from services.notifications.models import Delivery, Notification, Preference, Recipient, StaffNotification
from shared.auth import Principal, require_roles
from shared.deps import SessionDep
from shared.errors import NotFound
from shared.masking import mask_phone
from shared.observability import scrub
from shared.schemas import problem_responses

router = APIRouter(prefix="/api/v1")
STAFF = ("admin", "centre_reviewer", "office_reviewer", "agency_reviewer", "unit_agent")


class DeliveryOut(BaseModel):
    channel: DeliveryChannel
    status: DeliveryStatus
    attempts: int
    last_error: str | None = None
    to: str | None = None  # masked: the phone as 137****5678, the e-mail as z***@example.com
    sent_at: str | None = None


class NotificationOut(BaseModel):
    notification_id: str
    member_id: str
    channel: str
    to: str | None  # masked phone
    template: str
    text: str
    created_at: str
    read_at: str | None
    deliveries: list[DeliveryOut]


class StaffNotificationOut(BaseModel):
    notification_id: str
    template: str
    text: str
    subject: str | None
    created_at: str
    read_at: str | None


def mask_email(address: str) -> str:
    local, _, domain = address.partition("@")
    return f"{local[:1]}***@{domain}"


EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")


def shown_error(error: str | None) -> str | None:
    """A provider's or server's error as a feed shows it: e-mail addresses, ID numbers, phones and long numbers in
    it masked (an SMTP refusal names the recipient's address in full)."""
    if not error:
        return error
    return scrub(EMAIL.sub(lambda m: mask_email(m.group(0)), error))


def delivery_out(d: Delivery) -> dict[str, Any]:
    to = mask_phone(d.address) if d.channel == DeliveryChannel.SMS else mask_email(d.address)
    return DeliveryOut(channel=DeliveryChannel(d.channel), status=DeliveryStatus(d.status), attempts=d.attempts,
                       last_error=shown_error(d.last_error), to=to,
                       sent_at=d.sent_at.isoformat() if d.sent_at else None).model_dump(mode="json")


def out(n: Notification, deliveries: list[Delivery] | None = None) -> dict[str, Any]:
    """A message and how it reached the member: always in the app's feed (in_app, delivered), plus one entry per
    SMS or e-mail with its status, attempts and last error."""
    in_app = DeliveryOut(channel=DeliveryChannel.IN_APP, status=DeliveryStatus.DELIVERED, attempts=1)
    return {"notification_id": str(n.id), "member_id": n.member_id, "channel": n.channel,
            "to": mask_phone(n.to_phone) if n.to_phone else None, "template": n.template,
            "text": n.text, "created_at": n.created_at.isoformat(),
            "read_at": n.read_at.isoformat() if n.read_at else None,
            "deliveries": [in_app.model_dump(mode="json"), *(delivery_out(d) for d in deliveries or [])]}


async def feed(session: SessionDep, member_id: str) -> list[dict[str, Any]]:
    rows = list((await session.execute(select(Notification).where(Notification.member_id == member_id)
                                       .order_by(Notification.created_at.desc()).limit(200))).scalars())
    by_notification: dict[uuid.UUID, list[Delivery]] = {}
    if rows:
        deliveries = (await session.execute(select(Delivery).where(Delivery.notification_id.in_([n.id for n in rows]))
                                            .order_by(Delivery.channel))).scalars()
        for d in deliveries:
            by_notification.setdefault(d.notification_id, []).append(d)
    return [out(n, by_notification.get(n.id)) for n in rows]


@router.get("/me/notifications", tags=["notifications"], response_model=list[NotificationOut],
            responses=problem_responses(403))
async def my_notifications(session: SessionDep, actor: Annotated[Principal, require_roles("member")]) -> list:
    return await feed(session, actor.member_id or "")


@router.post("/me/notifications/{notification_id}/read", tags=["notifications"], response_model=NotificationOut,
             responses=problem_responses(403, 404))
async def mark_read(notification_id: uuid.UUID, session: SessionDep,
                    actor: Annotated[Principal, require_roles("member")]) -> dict:
    n = await session.get(Notification, notification_id)
    if n is None or n.member_id != actor.member_id:
        raise NotFound("消息不存在。")
    n.read_at = n.read_at or datetime.now(UTC)
    return out(n)


@router.get("/notifications", tags=["notifications"], response_model=list[NotificationOut],
            responses=problem_responses(403, 404))
async def member_notifications(member_id: str, session: SessionDep,
                               actor: Annotated[Principal, require_roles(*STAFF)]) -> list:
    recipient = await session.get(Recipient, member_id)
    if recipient is None or not actor.covers(recipient.unit_path):
        raise NotFound("未找到该人员的消息。", code="member_not_found")
    return await feed(session, member_id)


@router.get("/staff/notifications", tags=["notifications"], response_model=list[StaffNotificationOut],
            responses=problem_responses(403))
async def staff_notifications(session: SessionDep, actor: Annotated[Principal, require_roles(*STAFF)],
                              unread: bool = False) -> list[dict[str, Any]]:
    """Messages for the caller's organisation and role (what to fix, what is overdue), newest first."""
    stmt = select(StaffNotification).where(StaffNotification.org == actor.org,
                                           StaffNotification.audience == actor.role)
    if unread:
        stmt = stmt.where(StaffNotification.read_at.is_(None))
    rows = (await session.execute(stmt.order_by(StaffNotification.created_at.desc()).limit(200))).scalars()
    return [{"notification_id": str(n.id), "template": n.template, "text": n.text, "subject": n.subject,
             "created_at": n.created_at.isoformat(), "read_at": n.read_at.isoformat() if n.read_at else None}
            for n in rows]


class PreferencesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sms: bool = True
    email: bool = True


class PreferencesOut(BaseModel):
    sms: bool
    email: bool
    always_sent: list[str]  # templates sent on every channel whatever the preferences (they need action)


@router.get("/me/notification-preferences", tags=["notifications"], response_model=PreferencesOut,
            responses=problem_responses(403))
async def my_preferences(session: SessionDep, actor: Annotated[Principal, require_roles("member")]) -> PreferencesOut:
    pref = await session.get(Preference, actor.member_id or "")
    return PreferencesOut(sms=pref.sms if pref else True, email=pref.email if pref else True,
                          always_sent=sorted(MANDATORY_TEMPLATES))


@router.put("/me/notification-preferences", tags=["notifications"], response_model=PreferencesOut,
            responses=problem_responses(403))
async def set_preferences(body: PreferencesIn, session: SessionDep,
                          actor: Annotated[Principal, require_roles("member")]) -> PreferencesOut:
    """Turn SMS or e-mail off (or on again). The app's feed is always on; a failed transfer and a change of
    contact details are still sent on every channel, since the member must act on them."""
    values = {"member_id": actor.member_id or "", "sms": body.sms, "email": body.email,
              "updated_at": datetime.now(UTC)}
    await session.execute(insert(Preference).values(**values).on_conflict_do_update(
        index_elements=["member_id"], set_={k: v for k, v in values.items() if k != "member_id"}))
    return PreferencesOut(sms=body.sms, email=body.email, always_sent=sorted(MANDATORY_TEMPLATES))
