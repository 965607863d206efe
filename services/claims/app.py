"""The claims service: settlement data, claims, aid calculation, tiered approvals, review queues."""

from __future__ import annotations

from fastapi import FastAPI

from services.claims.api import router
from services.claims.handlers import HANDLERS
from services.claims.models import MESSAGING
from shared.db import Database
from shared.events import TOPIC_ENROLLMENT, TOPIC_PAYMENTS
from shared.service import ServiceSpec, create_app
from shared.settings import ClaimsSettings


def spec(settings: ClaimsSettings | None = None) -> ServiceSpec:
    return ServiceSpec(
        name="claims", title="Huzhu claims 补助申请与审批", settings=settings or ClaimsSettings(),
        tables=MESSAGING, routers=[router], handlers=HANDLERS, consumes=[TOPIC_ENROLLMENT, TOPIC_PAYMENTS],
    )


def build(settings: ClaimsSettings | None = None, *, run_workers: bool = True) -> FastAPI:
    s = spec(settings)
    return create_app(s, Database(s.settings.database_url, s.settings.db_pool_size), run_workers=run_workers)
