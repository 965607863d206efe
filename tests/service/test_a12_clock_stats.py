"""The claim clock on the dashboards (issue #12 item 7): the claims stats give days from discharge to
submission, to final approval and to payment (median, 90th percentile, distribution), each counted as the
claim's own clock counts it (domain/clock.py ``day_of``: the service's calendar day, not the UTC date)."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from shared.events import Envelope, PaymentInstructionCreated, PaymentSettled
from tests.conftest import ServiceClient, apply_event
from tests.service.test_claims import TODAY, Branch, claims, cover, decide, get_claim, publish_period, submit


@pytest.fixture
def shanghai_time() -> Iterator[None]:
    """The service runs in China's zone (UTC+8), as it does in production."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = "Asia/Shanghai"
    time.tzset()
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = before
        time.tzset()


async def test_the_stats_count_each_claims_clock_on_the_services_day(rolled_back: ServiceClient,
                                                                     shanghai_time: None) -> None:
    app, client = await claims(rolled_back)
    period = await publish_period(app)
    branch = Branch()
    member = await cover(app, period, branch)
    paid = await submit(client, member, base="5000.00", discharge=TODAY - timedelta(days=10))  # 1,260: agency point
    approved = await submit(client, member, base="2000.00", discharge=TODAY - timedelta(days=20))
    waiting = await submit(client, member, base="900.00", discharge=TODAY - timedelta(days=3))
    for claim in (paid, approved):
        r = await decide(client, claim["claim_id"], branch.agency_reviewer(user_id=str(uuid.uuid4())))
        assert r.status_code == 200 and r.json()["status"] == "approved", r.text
    instruction = str(uuid.uuid4())
    assert await apply_event(app, PaymentInstructionCreated(
        instruction_id=instruction, claim_id=paid["claim_id"], member_id=member.member_id,
        amount=Decimal("1260.00"), attempt=1))
    settled = PaymentSettled(instruction_id=instruction, claim_id=paid["claim_id"], member_id=member.member_id,
                             amount=Decimal("1260.00"))
    # paid at 01:30 in Kunming on the day after TODAY, 17:30 UTC on TODAY: the UTC date is a day short
    paid_at = datetime(TODAY.year, TODAY.month, TODAY.day, 17, 30, tzinfo=UTC)
    assert await apply_event(app, settled, Envelope(**{**settled.envelope().model_dump(), "occurred_at": paid_at}))

    clocks = {c["claim_id"]: (await get_claim(client, c["claim_id"], branch.agency_reviewer()))["clock"]
              for c in (paid, approved, waiting)}
    assert clocks[paid["claim_id"]]["days_to_payment"] == 11  # (TODAY + 1) - (TODAY - 10)
    r = await client.get(f"/api/v1/stats/periods/{period}/claims", headers=branch.agency_reviewer())
    assert r.status_code == 200, r.text
    stats = r.json()
    assert (stats["days_to_payment"]["count"], stats["days_to_payment"]["median"]) == (1, 11.0)
    submission = sorted(c["days_to_submission"] for c in clocks.values())
    assert stats["days_to_submission"]["count"] == 3 and stats["days_to_submission"]["claims"] == 3
    assert stats["days_to_submission"]["median"] == float(submission[1])
    assert stats["days_to_submission"]["p90"] == submission[-1]
    approval = sorted(c["days_to_approval"] for c in clocks.values() if c["days_to_approval"] is not None)
    assert len(approval) == 2 and stats["days_to_approval"]["approved_claims"] == 2
    assert stats["days_to_approval"]["median"] == sum(approval) / 2 and stats["days_to_approval"]["p90"] == approval[1]
    assert sum(b["count"] for b in stats["days_to_approval"]["buckets"]) == 2
    # The period's three claims and nothing else, each in the bucket its clock falls in.
    assert [b["count"] for b in stats["days_to_submission"]["buckets"]] == [
        sum(1 for days in submission if b["from"] <= days and (b["to"] is None or days < b["to"]))
        for b in stats["days_to_submission"]["buckets"]]
