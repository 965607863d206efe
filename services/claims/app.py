"""The claims service: settlement data, claims, aid calculation, tiered approvals, review queues."""

from __future__ import annotations

from services.claims.api import router
from services.claims.handlers import HANDLERS
from services.claims.models import MESSAGING
from shared.events import TOPIC_ENROLLMENT, TOPIC_PAYMENTS
from shared.service import ServiceSpec
from shared.settings import ClaimsSettings


def spec(settings: ClaimsSettings | None = None) -> ServiceSpec:
    return ServiceSpec(
        name="claims", title="Huzhu claims 补助申请与审批", settings=settings or ClaimsSettings(),
        tables=MESSAGING, routers=[router], handlers=HANDLERS, consumes=[TOPIC_ENROLLMENT, TOPIC_PAYMENTS],
    )
