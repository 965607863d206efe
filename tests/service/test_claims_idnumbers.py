"""Claims reads ID numbers as enrollment does (shared/idnumber.py): a member whose old 15-digit card is on the
hospital's papers is found by it, as by the 18-digit form enrollment stored."""

from __future__ import annotations

import random
import uuid
from datetime import timedelta
from decimal import Decimal

from deploy.people import legacy_certno, luhn_account
from shared.events import MemberCovered
from shared.idnumber import upgrade_15
from tests.conftest import ServiceClient, apply_event
from tests.service.test_claims import TODAY, Branch, Member, claim_body, claims, publish_period, short


async def test_a_claim_and_a_coverage_look_up_by_a_15_digit_number_find_the_member(
        rolled_back: ServiceClient) -> None:
    app, client = await claims(rolled_back)
    period = await publish_period(app)
    rng = random.Random(uuid.uuid4().int)
    old = legacy_certno(rng, sex="female")
    member = Member(member_id=f"M{short()}", certno=upgrade_15(old), period=period, branch=Branch())
    assert await apply_event(app, MemberCovered(
        member_id=member.member_id, period=period, plans=["inpatient"],
        coverage_from=TODAY - timedelta(days=180), coverage_to=TODAY + timedelta(days=180),
        name="𠮷玥", certno=member.certno, sex="female", member_type="retired", unit=member.branch.unit,
        unit_path=member.branch.path, bank_account=luhn_account(rng), bank_name="富滇银行昆明分行",
        phone="13812345678", renewing=True, fee=Decimal("120.00")))
    agent = member.branch.unit_agent()
    found = await client.get("/api/v1/coverages", params={"certno": old}, headers=agent)
    assert found.status_code == 200 and [c["member_id"] for c in found.json()] == [member.member_id], found.text
    r = await client.post("/api/v1/claims", json=claim_body(certno=old, base="5000.00"), headers=agent)
    assert r.status_code == 201, r.text
    assert r.json()["aid_amount"] == "1260.00"
    claim = await client.get(f"/api/v1/claims/{r.json()['claim_id']}", headers=agent)
    assert claim.json()["member_id"] == member.member_id
