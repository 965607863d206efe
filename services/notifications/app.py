"""The notifications service: messages to members and staff, per channel, and their delivery state."""

from __future__ import annotations

from services.notifications.api import router
from services.notifications.handlers import HANDLERS
from services.notifications.models import MESSAGING
from shared.events import TOPIC_CLAIMS, TOPIC_ENROLLMENT, TOPIC_PAYMENTS
from shared.service import ServiceSpec
from shared.settings import NotificationsSettings


def spec(settings: NotificationsSettings | None = None) -> ServiceSpec:
    return ServiceSpec(
        name="notifications", title="Huzhu notifications 消息通知", settings=settings or NotificationsSettings(),
        tables=MESSAGING, routers=[router], handlers=HANDLERS,
        consumes=[TOPIC_ENROLLMENT, TOPIC_CLAIMS, TOPIC_PAYMENTS],
    )
