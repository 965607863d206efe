"""The payments service: payment instructions, batches and bank files, bank results, the fund ledger."""

from __future__ import annotations

from services.payments.api import router
from services.payments.batches import router as batches
from services.payments.handlers import handlers
from services.payments.ledger_api import router as ledger
from services.payments.models import MESSAGING
from services.payments.stats import METRICS
from services.payments.stats import router as stats
from shared.events import TOPIC_CLAIMS, TOPIC_ENROLLMENT
from shared.service import ServiceSpec
from shared.settings import PaymentsSettings


def spec(settings: PaymentsSettings | None = None) -> ServiceSpec:
    settings = settings or PaymentsSettings()
    return ServiceSpec(
        name="payments", title="Huzhu payments 补助支付", settings=settings,
        tables=MESSAGING, routers=[router, batches, ledger, stats], handlers=handlers(settings),
        consumes=[TOPIC_ENROLLMENT, TOPIC_CLAIMS], metric_sources=METRICS,
    )
