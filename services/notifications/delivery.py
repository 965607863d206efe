"""Deliveries: a notification reaches the member by SMS and e-mail, sent by a worker, never by the consumer.

The consumer's transaction writes the notification and one ``deliveries`` row per channel (``queued``), so an
event and the messages it causes commit together and nothing is sent for an event that rolls back. The worker
(:func:`deliver_due`, run every ``delivery_interval_s`` by the service) claims due rows with
``FOR UPDATE SKIP LOCKED`` (several workers may run), counts the attempt and pushes the row's next attempt past a
lease in that short transaction, sends outside any transaction, then records the outcome: ``sent`` with the
provider's reference, or the error as ``last_error`` and a retry after ``backoff * 2^(attempts-1)`` seconds; after
``delivery_max_attempts`` the delivery is ``failed``. A worker that dies mid-send leaves the row to be retried
after the lease (at-least-once: one message may then arrive twice, never none).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from enum import StrEnum
from typing import Any

import aiosmtplib
import httpx
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.notifications.models import Delivery, Preference, Recipient
from services.notifications.sms import SmsError, SmsProvider, provider_from, send_sms
from shared.db import Database
from shared.settings import NotificationsSettings

log = logging.getLogger(__name__)


class DeliveryChannel(StrEnum):
    IN_APP = "in_app"
    SMS = "sms"
    EMAIL = "email"


class DeliveryStatus(StrEnum):
    QUEUED = "queued"
    SENT = "sent"  # accepted by the SMS provider or the SMTP server
    DELIVERED = "delivered"  # in the member's feed (in_app); a provider's delivery receipt would set it too
    FAILED = "failed"


# Messages a member cannot switch off: a failed transfer needs them to act (check their bank account), and a
# change of their phone or bank account is told at the previous phone in case it was not them.
MANDATORY_TEMPLATES = frozenset({"payment_failed", "contact_changed"})
SUBJECTS = {"payment_failed": "补助转账未成功，请核对银行账户", "contact_changed": "联系方式或银行账号已变更"}


async def enqueue(session: AsyncSession, notification_id: uuid.UUID, template: str, recipient: Recipient | None,
                  *, sms_to: str | None = None) -> None:
    """Queue the SMS and e-mail of a new notification, as the member's preferences allow (in the caller's
    transaction). ``sms_to`` overrides the recipient's phone (a contact change is told at the previous one)."""
    member_id = recipient.member_id if recipient is not None else None
    pref = await session.get(Preference, member_id) if member_id else None
    mandatory = template in MANDATORY_TEMPLATES
    phone = sms_to or (recipient.phone if recipient is not None else "")
    rows: list[dict[str, Any]] = []
    if phone and (mandatory or pref is None or pref.sms):
        rows.append({"channel": DeliveryChannel.SMS, "address": phone})
    email = recipient.email if recipient is not None else None
    if email and (mandatory or pref is None or pref.email):
        rows.append({"channel": DeliveryChannel.EMAIL, "address": email})
    for row in rows:
        await session.execute(insert(Delivery).values(
            id=uuid.uuid4(), notification_id=notification_id, status=DeliveryStatus.QUEUED, attempts=0, **row))


@dataclass
class Job:
    id: uuid.UUID
    channel: str
    address: str
    attempts: int
    template: str
    text: str


@dataclass
class Channels:
    """What sends: the SMS provider with its HTTP client, and the SMTP server's settings."""

    settings: NotificationsSettings
    sms: SmsProvider
    http: httpx.AsyncClient

    @classmethod
    def from_settings(cls, settings: NotificationsSettings) -> Channels:
        return cls(settings, provider_from(settings), httpx.AsyncClient(timeout=settings.delivery_timeout_s))

    async def send(self, job: Job) -> str:
        if job.channel == DeliveryChannel.SMS:
            return await send_sms(self.sms, self.http, job.address, job.text, job.template)
        return await self.send_email(job)

    async def send_email(self, job: Job) -> str:
        s = self.settings
        message = EmailMessage()
        message["From"] = s.smtp_sender
        message["To"] = job.address
        message["Subject"] = SUBJECTS.get(job.template, "职工医疗互助消息")
        message["Message-ID"] = f"<{job.id}@huzhu.local>"
        message.set_content(job.text + "\n\n（本邮件由职工医疗互助系统发送，请勿直接回复。）")
        await aiosmtplib.send(message, hostname=s.smtp_host, port=s.smtp_port, username=s.smtp_username or None,
                              password=s.smtp_password or None, start_tls=s.smtp_starttls,
                              timeout=s.delivery_timeout_s)
        return str(job.id)


async def claim_due(db: Database, settings: NotificationsSettings, now: datetime, batch: int) -> list[Job]:
    from services.notifications.models import Notification

    lease = timedelta(seconds=max(60.0, settings.delivery_timeout_s * 3))
    async with db.transaction() as session:
        rows = (await session.execute(
            select(Delivery, Notification.template, Notification.text)
            .join(Notification, Notification.id == Delivery.notification_id)
            .where(Delivery.status == DeliveryStatus.QUEUED, Delivery.next_attempt_at <= now)
            .order_by(Delivery.next_attempt_at).limit(batch)
            .with_for_update(of=Delivery, skip_locked=True))).all()
        jobs = []
        for delivery, template, text in rows:
            delivery.attempts += 1
            delivery.next_attempt_at = now + lease
            jobs.append(Job(delivery.id, delivery.channel, delivery.address, delivery.attempts, template, text))
    return jobs


async def record_outcome(db: Database, settings: NotificationsSettings, job: Job, ref: str | None,
                         error: str | None) -> None:
    """The send's outcome in one statement (a row gone meanwhile changes nothing)."""
    now = datetime.now(UTC)
    stmt = update(Delivery).where(Delivery.id == job.id)
    if error is None:
        stmt = stmt.values(status=DeliveryStatus.SENT, sent_at=now, provider_ref=(ref or "")[:100])
    elif job.attempts >= settings.delivery_max_attempts:
        stmt = stmt.values(status=DeliveryStatus.FAILED, last_error=error[:1000])
    else:
        stmt = stmt.values(last_error=error[:1000],
                           next_attempt_at=now + timedelta(seconds=settings.delivery_backoff_s * 2 ** (job.attempts - 1)))
    async with db.transaction() as session:
        await session.execute(stmt)


async def deliver_due(db: Database, settings: NotificationsSettings, channels: Channels, *,
                      now: datetime | None = None, batch: int = 50) -> int:
    """Send every delivery that is due, up to ``delivery_concurrency`` at once, each outcome recorded as soon as
    its send returns; the number attempted."""
    jobs = await claim_due(db, settings, now or datetime.now(UTC), batch)
    gate = asyncio.Semaphore(settings.delivery_concurrency)

    async def deliver(job: Job) -> None:
        async with gate:
            ref: str | None = None
            error: str | None = None
            try:
                ref = await channels.send(job)
            except (SmsError, aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
                error = f"{type(exc).__name__}: {exc}"
                log.warning("delivery failed", extra={"fields": {"delivery_id": str(job.id), "channel": job.channel,
                                                                  "attempt": job.attempts}})
            await record_outcome(db, settings, job, ref, error)

    outcomes = await asyncio.gather(*(deliver(job) for job in jobs), return_exceptions=True)
    for outcome in outcomes:  # anything unexpected: the others were still sent and recorded
        if isinstance(outcome, BaseException):
            raise outcome
    return len(jobs)


async def delivery_sweeper(app: Any) -> None:
    """The service's worker loop body (ServiceSpec.sweepers): drain what is due."""
    channels = getattr(app.state, "channels", None)
    if channels is None:
        channels = app.state.channels = Channels.from_settings(app.state.settings)
    while await deliver_due(app.state.db, app.state.settings, channels) > 0:
        pass
