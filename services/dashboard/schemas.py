"""The dashboard's JSON answers: each figure keeps the model of the service that owns it (the dashboard passes
them through, scoped by the caller's own token), plus the few figures the dashboard computes itself."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from services.claims.stats import ClaimStats
from services.enrollment.schemas import OfficeRemittanceRow, RemittanceTotals
from services.enrollment.stats import EnrollmentStats
from services.payments.stats import PaymentStats
from shared.schemas import MoneyOut
from shared.vocab import OrgLevel

__all__ = ["HealthOut", "OverviewOut", "ServiceHealth"]


class OverdueClaim(BaseModel):
    """A claim past its due date (claims' ``GET /api/v1/claims/overdue``)."""

    model_config = ConfigDict(extra="allow")
    claim_id: str
    member_id: str
    period: str
    plan: str
    current_level: OrgLevel | None
    org: str | None
    due_date: str | None
    working_days_overdue: int
    aid_amount: MoneyOut | None
    unit: str | None


class PayoutMonth(BaseModel):
    month: str  # YYYY-MM
    approved: MoneyOut
    paid: MoneyOut
    fees_received: MoneyOut
    paid_to_date: MoneyOut
    fees_to_date: MoneyOut
    payout_ratio_to_date: float | None  # aid paid / fees received to date, 4 places; null before any fee


class OverviewOut(BaseModel):
    period: str
    branch: str  # the caller's organisation, "*" for the admin
    role: str
    enrollment: EnrollmentStats
    remittance: RemittanceTotals | None  # only for finance, admin and the centre's and offices' reviewers
    remittance_offices: list[OfficeRemittanceRow] | None
    claims: ClaimStats
    overdue: list[OverdueClaim]
    payments: PaymentStats
    payout: list[PayoutMonth]
    elapsed_ms: int


class ServiceHealth(BaseModel):
    service: str
    up: bool
    error: str | None = None  # why /metrics could not be read
    outbox_backlog: int | None = None
    outbox_oldest_unpublished_seconds: float | None = None
    consumer_lag: dict[str, int] | None = None  # per topic
    events_dead_lettered: int | None = None
    events_applied: int | None = None
    events_duplicates_skipped: int | None = None
    outbox_published: int | None = None


class HealthOut(BaseModel):
    services: list[ServiceHealth]
