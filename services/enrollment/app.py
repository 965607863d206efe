"""The enrollment service: organisations, staff accounts and login, periods, rosters, fees, members."""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy import select

from services.enrollment import (
    fees,
    history,
    lifecycle,
    logins,
    member_accounts,
    member_app,
    member_contact,
    member_signup,
    staff_lists,
    stats,
    transfers,
)
from services.enrollment.api import router
from services.enrollment.loyalty import claim_aid_changed
from services.enrollment.models import MESSAGING, User
from services.enrollment.service import hasher
from shared.db import Database
from shared.events import TOPIC_CLAIMS, ClaimAdjusted, ClaimApproved, ClaimRejected, ClaimRevoked
from shared.service import ServiceSpec
from shared.settings import EnrollmentSettings


async def ensure_admin(app: FastAPI) -> None:
    """The first start creates the ``admin`` account with ``ENROLLMENT_ADMIN_PASSWORD`` (docs/API.md)."""
    db: Database = app.state.db
    async with db.transaction() as session:
        exists = (await session.execute(select(User.id).where(User.username == "admin"))).first()
        if exists is None:
            session.add(User(username="admin", password_hash=hasher.hash(app.state.settings.admin_password),
                             role="admin", org=None))


def spec(settings: EnrollmentSettings | None = None) -> ServiceSpec:
    return ServiceSpec(
        name="enrollment", title="Huzhu enrollment 参互登记", settings=settings or EnrollmentSettings(),
        tables=MESSAGING,
        routers=[router, lifecycle.router, fees.router, history.router, transfers.router, logins.router, stats.router,
                 staff_lists.router, member_accounts.router, member_app.router, member_contact.router,
                 member_signup.router],
        on_start=ensure_admin, handlers={
            cls.TYPE: claim_aid_changed for cls in (ClaimApproved, ClaimAdjusted, ClaimRejected, ClaimRevoked)}, consumes=[TOPIC_CLAIMS],
        metric_sources=stats.METRICS,
        # roster files and the history of a period run on paper are spreadsheets of a whole unit or office
        body_limits={"/api/v1/periods/{period}/units/{unit}/rosters": "max_roster_bytes",
                     "/api/v1/periods/{code}/history": "max_roster_bytes"},
    )
