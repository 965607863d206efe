"""What offices remitted to the centre against what their units paid (docs/DOMAIN.md: the amount remitted must
equal the enrolment data in the system), from enrollment's roster.fees_received and fees.remitted events."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal

from shared.events import FeesReceived, FeesRemitted
from tests.conftest import ServiceClient, apply_event, token_for


async def test_an_office_that_remitted_less_than_its_units_paid_shows_short(rolled_back: ServiceClient) -> None:
    app, client = await rolled_back("payments")
    period, tag = "yn-18", uuid.uuid4().hex[:4]  # the real period: rolled back, the report holds this test's rows
    office, other = f"O{tag}", f"Q{tag}"
    for unit, amount in ((f"{office}-U1", "600.00"), (f"{office}-U2", "900.00")):
        assert await apply_event(app, FeesReceived(
            roster_id=str(uuid.uuid4()), period=period, unit=unit, amount=Decimal(amount), reference="BANK",
            unit_path=["C", office, f"{office}-A", unit]))
    assert await apply_event(app, FeesRemitted(remittance_id=str(uuid.uuid4()), period=period, office=office,
                                               amount=Decimal("1200.00"), reference="汇款 1",
                                               remitted_at=date(2026, 3, 1)))
    assert await apply_event(app, FeesRemitted(remittance_id=str(uuid.uuid4()), period=period, office=other,
                                               amount=Decimal("50.00"), reference="汇款 2",
                                               remitted_at=date(2026, 3, 2)))
    finance = token_for("finance", "C", ("C",), "centre")
    report = (await client.get(f"/api/v1/ledger/periods/{period}/fees-reconciliation", headers=finance)).json()
    by_office = {o["office"]: o for o in report["offices"]}
    assert sorted(by_office) == sorted([office, other])  # the test's two offices, no other
    assert by_office[office]["received"] == "1500.00"
    assert by_office[office]["remitted"] == "1200.00"
    assert by_office[office]["remittance_difference"] == "-300.00"
    assert by_office[office]["remittance_status"] == "short"
    # An office that sent money with no unit payment on record is not hidden: it shows as over.
    assert by_office[other]["remitted"] == "50.00" and by_office[other]["remittance_status"] == "over"
    assert {u["unit"]: u["office"] for u in report["units"]} == {f"{office}-U1": office, f"{office}-U2": office}
