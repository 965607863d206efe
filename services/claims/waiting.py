"""A claim that names a member or a period claims has not learnt yet waits: 409 with Retry-After, never a
refusal (issue #11, item 3). Enrollment's events reach claims some time after the facts they describe
(``member.covered`` and ``period.published`` travel on different keys and partitions), so a member unknown
here may still arrive. A member still unknown ``reference_grace_seconds`` after the first ask is not coming:
404 ``member_not_found``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.dialects.postgresql import insert

from services.claims.models import AwaitedReference
from shared.db import Database
from shared.errors import NotFound, NotYetKnown

RETRY_AFTER_SECONDS = 5


async def first_asked(db: Database, reference: str) -> datetime:
    """Recorded in its own transaction: the request itself is answered with an error and rolled back."""
    async with db.transaction() as session:
        await session.execute(insert(AwaitedReference).values(reference=reference).on_conflict_do_nothing())
        return (await session.get(AwaitedReference, reference)).first_asked_at  # type: ignore[union-attr]


async def member_unknown(db: Database, reference: str, grace_seconds: int) -> NotYetKnown | NotFound:
    """The error for a member claims has no coverage of at all: wait while it may still arrive."""
    asked = await first_asked(db, reference)
    if datetime.now(UTC) - asked < timedelta(seconds=grace_seconds):
        return NotYetKnown("该人员的参互记录尚未同步到补助系统，请稍后重试。", code="member_not_yet_known",
                           retry_after=RETRY_AFTER_SECONDS)
    return NotFound("未找到该人员的参互记录。", code="member_not_found")


def period_not_yet_known(period: str) -> NotYetKnown:
    """A coverage whose period's rulebook has not arrived: the rulebook always comes (enrollment publishes the
    period before any coverage in it), so this is only ever a wait."""
    return NotYetKnown(f"互助期 {period} 的规则书尚未同步到补助系统，请稍后重试。", code="period_not_yet_known",
                       retry_after=RETRY_AFTER_SECONDS)
