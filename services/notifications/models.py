"""Notifications' own tables: recipients (which branch a member belongs to) and the messages themselves."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Boolean, DateTime, ForeignKey, Index, Integer, String, Text, func, text
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.db import new_metadata, utcnow
from shared.messaging import messaging_tables


class Base(DeclarativeBase):
    metadata = new_metadata()


MESSAGING = messaging_tables(Base.metadata)


class Recipient(Base):
    __tablename__ = "recipients"
    member_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    phone: Mapped[str] = mapped_column(String(20))
    unit_path: Mapped[list[str]] = mapped_column(ARRAY(String(50)))
    # The member's version in enrollment these fields come from: an older event never overwrites them.
    member_version: Mapped[int] = mapped_column(Integer, server_default="0", default=0)
    email: Mapped[str | None] = mapped_column(String(254))  # optional: from enrollment's contact change


class Notification(Base):
    __tablename__ = "notifications"
    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    # One message per event and template: the event id makes a redelivery harmless even without the inbox.
    source_event_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), unique=True)
    member_id: Mapped[str] = mapped_column(String(40), index=True)
    channel: Mapped[str] = mapped_column(String(20))  # in_app | sms (SMS and e-mail adapters come later)
    # The number an sms goes to, when it is not the member's current one: a change of phone or bank account
    # is told at the phone the member had before it (issue #9), where the real member still is.
    to_phone: Mapped[str | None] = mapped_column(String(20))
    template: Mapped[str] = mapped_column(String(50))
    text: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20))  # recorded | sent | failed
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class StaffNotification(Base):
    """A message to the staff of one organisation in one role: a unit agent told what to fix after a failed
    transfer, a reviewer reminded of an overdue claim, the level above told of an escalation."""

    __tablename__ = "staff_notifications"
    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    source_event_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), unique=True)
    org: Mapped[str] = mapped_column(String(50), index=True)
    audience: Mapped[str] = mapped_column(String(30))  # the role the message is for
    template: Mapped[str] = mapped_column(String(50))
    text: Mapped[str] = mapped_column(Text)
    subject: Mapped[str | None] = mapped_column(String(40))  # the claim or member concerned
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Delivery(Base):
    """One message on one channel (sms, email): an outbox the delivery worker drains (delivery.py). Written in
    the consumer's transaction with the notification, sent later by the worker, never inside that transaction."""

    __tablename__ = "deliveries"
    __table_args__ = (Index("ix_deliveries_due", "status", "next_attempt_at"),
                      # a provider's delivery receipt names its own reference (receipts.py): found, not scanned for
                      Index("ix_deliveries_provider_ref", "provider_ref",
                            postgresql_where=text("provider_ref IS NOT NULL")))
    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    notification_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("notifications.id"), index=True)
    channel: Mapped[str] = mapped_column(String(20))  # DeliveryChannel
    address: Mapped[str] = mapped_column(String(254))  # the phone or e-mail address at the time of the event
    status: Mapped[str] = mapped_column(String(20))  # DeliveryStatus
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    provider_ref: Mapped[str | None] = mapped_column(String(100))
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(),
                                                      default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), default=utcnow)


class Preference(Base):
    """Which channels a member wants (PUT /me/notification-preferences); no row = every channel on."""

    __tablename__ = "notification_preferences"
    member_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    sms: Mapped[bool] = mapped_column(Boolean, default=True)
    email: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), default=utcnow)
