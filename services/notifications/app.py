"""The notifications service: messages to members and staff, per channel, and their delivery state."""

from __future__ import annotations

from fastapi import FastAPI

from services.notifications.api import router
from services.notifications.handlers import HANDLERS
from services.notifications.models import MESSAGING
from shared.db import Database
from shared.events import TOPIC_CLAIMS, TOPIC_ENROLLMENT, TOPIC_PAYMENTS
from shared.service import ServiceSpec, create_app
from shared.settings import NotificationsSettings


def spec(settings: NotificationsSettings | None = None) -> ServiceSpec:
    return ServiceSpec(
        name="notifications", title="Huzhu notifications 消息通知", settings=settings or NotificationsSettings(),
        tables=MESSAGING, routers=[router], handlers=HANDLERS,
        consumes=[TOPIC_ENROLLMENT, TOPIC_CLAIMS, TOPIC_PAYMENTS],
    )


def build(settings: NotificationsSettings | None = None, *, run_workers: bool = True) -> FastAPI:
    s = spec(settings)
    return create_app(s, Database(s.settings.database_url, s.settings.db_pool_size), run_workers=run_workers)
