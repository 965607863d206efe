"""The notifications service: messages to members and staff, per channel, and their delivery state."""

from __future__ import annotations

from services.notifications import receipts, signup
from services.notifications.api import router
from services.notifications.delivery import delivery_sweeper
from services.notifications.handlers import HANDLERS
from services.notifications.models import MESSAGING
from shared.events import TOPIC_CLAIMS, TOPIC_ENROLLMENT, TOPIC_PAYMENTS, MemberContactCode, MemberSignupCode
from shared.service import ServiceSpec
from shared.settings import NotificationsSettings


def spec(settings: NotificationsSettings | None = None) -> ServiceSpec:
    settings = settings or NotificationsSettings()
    return ServiceSpec(
        name="notifications", title="Huzhu notifications 消息通知", settings=settings,
        tables=MESSAGING, routers=[router, receipts.router], handlers={
            **HANDLERS, MemberSignupCode.TYPE: signup.signup_code, MemberContactCode.TYPE: signup.signup_code},
        consumes=[TOPIC_ENROLLMENT, TOPIC_CLAIMS, TOPIC_PAYMENTS],
        # The delivery worker: SMS and e-mail are sent here, never in the consumer's transaction.
        sweepers=[delivery_sweeper], sweep_interval=settings.delivery_interval_s,
    )
