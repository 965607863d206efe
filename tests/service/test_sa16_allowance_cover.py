"""A per-day allowance (seed 002 住院津贴) for a stay admitted before the member's cover began pays only the days
inside the cover (seed 003 第十二条（一）; seed 002 says nothing otherwise), with rulebooks/beijing-2014.yaml:
50.00 a day, the stay's first 3 days not paid."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from shared.events import MemberCovered
from tests.conftest import ServiceClient, apply_event
from tests.service.test_claims import TODAY, claim_body, cover, get_claim, publish_rulebook


async def test_an_allowance_stay_admitted_before_the_cover_is_paid_for_its_days_inside_it(
        rolled_back: ServiceClient) -> None:
    app, client = await rolled_back("claims")
    code = await publish_rulebook(app, "beijing-2014.yaml", "bj14", cover_from=TODAY - timedelta(days=380),
                                  enrolment=(TODAY - timedelta(days=420), TODAY - timedelta(days=400)))
    member = await cover(app, code)
    joined = TODAY - timedelta(days=100)  # joined in the course of the period
    assert await apply_event(app, MemberCovered(
        member_id=member.member_id, period=code, plans=["allowance"], coverage_from=joined,
        coverage_to=TODAY + timedelta(days=180), name="佘璟", certno=member.certno, sex="female",
        member_type="in_service", unit=member.branch.unit, unit_path=member.branch.path,
        bank_account="6222020200112233445", bank_name="中国工商银行北京西单支行", phone="13601012345",
        renewing=False, fee=Decimal("30.00")))
    body = claim_body(member, discharge=TODAY - timedelta(days=90))
    body["plan"] = "allowance"
    body["admission_date"] = (TODAY - timedelta(days=110)).isoformat()  # 20 nights, 10 of them before the cover
    r = await client.post("/api/v1/claims", json=body, headers=member.branch.unit_agent())
    assert r.status_code == 201, r.text
    claim = await get_claim(client, r.json()["claim_id"], member.token())
    assert claim["aid_amount"] == "500.00"  # 10 days x 50.00, not (20 - 3) x 50.00 = 850.00
    assert joined.isoformat() in claim["explanation"]
