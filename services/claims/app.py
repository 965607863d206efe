"""The claims service: settlement data, claims, aid calculation, tiered approvals, review queues."""

from __future__ import annotations

from services.claims import calendar, documents, member_claims, overdue, settlements, stats
from services.claims.api import router
from services.claims.handlers import HANDLERS
from services.claims.models import MESSAGING
from shared.events import TOPIC_ENROLLMENT, TOPIC_PAYMENTS, PaymentSettled
from shared.service import ServiceSpec
from shared.settings import ClaimsSettings


def spec(settings: ClaimsSettings | None = None) -> ServiceSpec:
    return ServiceSpec(
        name="claims", title="Huzhu claims 补助申请与审批", settings=settings or ClaimsSettings(),
        tables=MESSAGING,
        # overdue first: /claims/overdue must be matched before /claims/{claim_id}
        routers=[overdue.router, settlements.router, router, documents.router, calendar.router, stats.router,
                 member_claims.router],
        # payment.paid also stamps the dashboard's read model (stats.py)
        # payment events are also kept for the member's timeline (member_claims.py)
        handlers=member_claims.recording_payments(
            {**HANDLERS, PaymentSettled.TYPE: stats.recording_paid_at(HANDLERS[PaymentSettled.TYPE])}),
        consumes=[TOPIC_ENROLLMENT, TOPIC_PAYMENTS],
        sweepers=[overdue.overdue_sweeper], sweep_interval=60.0, metric_sources=stats.METRICS,
        body_limits={"/api/v1/settlements": "max_feed_bytes",
                     "/api/v1/claims/{claim_id}/documents": ("max_document_bytes", 64 * 1024)},
    )
