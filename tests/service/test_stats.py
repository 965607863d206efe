"""The dashboard's stats endpoints (issue #14) over ASGI against real PostgreSQL: the figures, the branch
scoping on whole path segments (an office "O1" must not see "O10"), and the claims-paid read model."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from shared.events import Envelope, PaymentInstructionCreated, PaymentSettled
from tests.conftest import ServiceClient, apply_event, token_for
from tests.service.test_claims import TODAY, Branch, claims, cover, decide, publish_period, submit


async def test_claim_stats_count_the_branch_only_on_whole_path_segments(rolled_back: ServiceClient) -> None:
    app, client = await claims(rolled_back)
    period = await publish_period(app)
    mine = Branch()
    # Same centre, an office whose code starts with mine's: a text prefix match would mix them up.
    trap = Branch(centre=mine.centre, office=mine.office + "0")
    a = await cover(app, period, mine)
    b = await cover(app, period, trap)
    first = await submit(client, a, base="11000.00")  # 3460.00, agency point then office
    await submit(client, a, base="500.00", discharge=TODAY - timedelta(days=3))
    await submit(client, b, base="11000.00")
    reviewer_a, reviewer_o = str(uuid.uuid4()), str(uuid.uuid4())
    assert (await decide(client, first["claim_id"], mine.agency_reviewer(user_id=reviewer_a))).status_code == 200
    assert (await decide(client, first["claim_id"], mine.office_reviewer(user_id=reviewer_o))).status_code == 200

    r = await client.get(f"/api/v1/stats/periods/{period}/claims", headers=mine.office_reviewer())
    assert r.status_code == 200, r.text
    office = r.json()
    assert office["total"] == 2, office
    assert office["by_status"]["approved"] == 1 and office["by_status"]["in_review"] == 1
    assert office["in_review_by_level"]["agency_point"] == 1
    assert office["aid"]["approved"] == "3460.00"
    assert office["bureau"] == {"claims": 2, "from_bureau": 0, "share": 0.0,
                                "definition": office["bureau"]["definition"]}

    centre = (await client.get(f"/api/v1/stats/periods/{period}/claims", headers=mine.centre_reviewer())).json()
    assert centre["total"] == 3
    other = (await client.get(f"/api/v1/stats/periods/{period}/claims", headers=trap.office_reviewer())).json()
    assert other["total"] == 1

    # payments announces the aid paid: the read model stamps it, days from discharge to payment follow.
    instruction = str(uuid.uuid4())
    assert await apply_event(app, PaymentInstructionCreated(
        instruction_id=instruction, claim_id=first["claim_id"], member_id=a.member_id, amount=Decimal("3460.00"),
        attempt=1))
    paid = PaymentSettled(instruction_id=instruction, claim_id=first["claim_id"], member_id=a.member_id,
                          amount=Decimal("3460.00"))
    envelope = paid.envelope()
    at = datetime.now(UTC)
    envelope = Envelope(**{**envelope.model_dump(), "occurred_at": at})
    assert await apply_event(app, paid, envelope)
    office = (await client.get(f"/api/v1/stats/periods/{period}/claims", headers=mine.office_reviewer())).json()
    assert office["by_status"]["paid"] == 1
    assert office["aid"]["paid"] == "3460.00"
    assert office["days_to_payment"]["count"] == 1 and office["days_to_payment"]["median"] == 10.0
    assert [m["paid"] for m in office["by_month"]] == ["3460.00"], office["by_month"]


async def test_claim_stats_refuse_members_and_unknown_periods(rolled_back: ServiceClient) -> None:
    app, client = await claims(rolled_back)
    period = await publish_period(app)
    r = await client.get(f"/api/v1/stats/periods/{period}/claims", headers=token_for("member", member_id="M1"))
    assert r.status_code == 403
    r = await client.get("/api/v1/stats/periods/nope/claims", headers=token_for("admin"))
    assert r.status_code == 404 and r.json()["code"] == "period_not_found"


async def test_claims_by_status_gauge_on_metrics(rolled_back: ServiceClient) -> None:
    app, client = await claims(rolled_back)
    period = await publish_period(app)
    await submit(client, await cover(app, period))
    lines = (await client.get("/metrics")).text.splitlines()
    assert 'claims_by_status{status="in_review"} 1.0' in lines  # the test's one claim, and no other
    # the claim.submitted event waits in the outbox (no relay in this test)
    assert 'outbox_backlog{topic="claims.events"} 1.0' in lines


async def test_payment_stats_scope_by_whole_path_segments(rolled_back: ServiceClient) -> None:
    from tests.service.test_payments import approved, covered, short

    app, client = await rolled_back("payments")
    centre, office = f"C{short()}", f"O{short()}"
    mine = [centre, office, f"A{short()}", f"U{short()}"]
    trap = [centre, office + "0", f"A{short()}", f"U{short()}"]
    for path, aid in ((mine, "3460.00"), (mine, "100.00"), (trap, "999.00")):
        member_id = f"M{short()}"
        assert await apply_event(app, covered(member_id, path, "6222020200112233445"))
        assert await apply_event(app, approved(str(uuid.uuid4()), member_id, aid))
    office_token = token_for("office_reviewer", office, tuple(mine[:2]), "office")
    r = await client.get("/api/v1/stats/periods/yn-18/payments", headers=office_token)
    assert r.status_code == 200, r.text
    stats = r.json()
    assert stats["pending"] == {"instructions": 2, "amount": "3560.00"}
    assert stats["failed_to_fix"]["count"] == 0 and stats["recoveries_due"]["count"] == 0
    trap_token = token_for("office_reviewer", trap[1], tuple(trap[:2]), "office")
    assert (await client.get("/api/v1/stats/periods/yn-18/payments", headers=trap_token)).json()["pending"] == {
        "instructions": 1, "amount": "999.00"}
    r = await client.get("/api/v1/stats/periods/yn-18/payments", headers=token_for("unit_agent", mine[-1]))
    assert r.status_code == 403
    lines = (await client.get("/metrics")).text.splitlines()
    assert 'payment_instructions_by_status{status="pending"} 3.0' in lines  # the test's three approvals


async def test_enrollment_stats_need_a_known_period_and_a_staff_role(rolled_back: ServiceClient) -> None:
    _app, client = await rolled_back("enrollment")
    r = await client.get("/api/v1/stats/periods/none-such/enrollment", headers=token_for("admin"))
    assert r.status_code == 404 and r.json()["code"] == "period_not_found"
    r = await client.get("/api/v1/stats/periods", headers=token_for("member", member_id="M1"))
    assert r.status_code == 403
    assert "roster_rows_imported_total" in (await client.get("/metrics")).text
