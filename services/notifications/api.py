"""Notifications' HTTP endpoints (docs/API.md "Notifications (8004)")."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter
from sqlalchemy import select

from services.notifications.models import Notification, Recipient, StaffNotification
from shared.auth import Principal, require_roles
from shared.deps import SessionDep
from shared.errors import NotFound
from shared.masking import mask_phone

router = APIRouter(prefix="/api/v1")
STAFF = ("admin", "centre_reviewer", "office_reviewer", "agency_reviewer", "unit_agent")


def out(n: Notification) -> dict[str, Any]:
    return {"notification_id": str(n.id), "member_id": n.member_id, "channel": n.channel,
            "to": mask_phone(n.to_phone) if n.to_phone else None, "template": n.template,
            "text": n.text, "created_at": n.created_at.isoformat(),
            "read_at": n.read_at.isoformat() if n.read_at else None}


async def feed(session: SessionDep, member_id: str) -> list[dict[str, Any]]:
    rows = (await session.execute(select(Notification).where(Notification.member_id == member_id)
                                  .order_by(Notification.created_at.desc()).limit(200))).scalars()
    return [out(n) for n in rows]


@router.get("/me/notifications", tags=["notifications"])
async def my_notifications(session: SessionDep, actor: Annotated[Principal, require_roles("member")]) -> list:
    return await feed(session, actor.member_id or "")


@router.post("/me/notifications/{notification_id}/read", tags=["notifications"])
async def mark_read(notification_id: uuid.UUID, session: SessionDep,
                    actor: Annotated[Principal, require_roles("member")]) -> dict:
    n = await session.get(Notification, notification_id)
    if n is None or n.member_id != actor.member_id:
        raise NotFound("消息不存在。")
    n.read_at = n.read_at or datetime.now(UTC)
    return out(n)


@router.get("/notifications", tags=["notifications"])
async def member_notifications(member_id: str, session: SessionDep,
                               actor: Annotated[Principal, require_roles(*STAFF)]) -> list:
    recipient = await session.get(Recipient, member_id)
    if recipient is None or not actor.covers(recipient.unit_path):
        raise NotFound("未找到该人员的消息。", code="member_not_found")
    return await feed(session, member_id)


@router.get("/staff/notifications", tags=["notifications"])
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
