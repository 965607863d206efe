"""Second aid only per member and period, on the figures the system holds (issue #16 item 1, issue #12 item 3),
with the member's unclaimed bureau records counted in the remaining (seed 000 "个人自负剩余费用"), and intake
serialised per member and period so two claims at once cannot both use the same band room (rulebooks/yunnan-19.yaml
and yunnan-18.yaml bands: 30% over 800 to 10,000, 70% to 100,000, 100% to 500,000; second aid 30% in the first year).
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

from tests.conftest import ServiceClient
from tests.service.test_claims import TODAY, bureau, claim_body, cover, get_claim, publish_period
from tests.service.test_s16_second_aid import first_aid, member_of, second_aid, stay


def true_remaining_100000(member: Any) -> dict[str, Any]:
    """psn_part 365,760 with 65,760 fully self-paid: base 300,000 -> first aid 2,760 + 63,000 + 200,000 = 265,760,
    so the member still owes 100,000.00 (the threshold, inclusive)."""
    return stay(member, medfee="465760.00", fund="100000.00", psn_part="365760.00", own_pay="65760.00",
                discharge_ago=60)


async def test_typed_in_second_aid_figures_on_a_settlement_are_refused_and_the_period_claim_pays_30000(
        rolled_back: ServiceClient) -> None:
    app, client = await rolled_back("claims")
    member = await member_of(app, name="马骉", sex="male")  # one year of participation
    body = true_remaining_100000(member)
    first = await first_aid(client, member, body)
    assert (first["status"], first["aid_amount"]) == ("approved", "265760.00")

    # The reviewer's attack: the old per-settlement form with invented figures answered 201 with 500,000.00.
    attack = {**body, "plan": "second-aid", "second_aid": {"remaining_amount": "1000000", "years_of_participation": 40}}
    r = await client.post("/api/v1/claims", json=attack, headers=member.branch.unit_agent())
    assert r.status_code == 422, r.text
    problem = r.json()
    assert problem["code"] == "second_aid_per_period"
    assert problem["errors"][0]["loc"] == ["body", "second_aid"]
    assert "period" in problem["detail"] and "二次补助" in problem["detail"]
    # Without the figures, naming the settlement (or only its setl_id) is refused the same way, by field.
    without = {k: v for k, v in attack.items() if k != "second_aid"}
    r = await client.post("/api/v1/claims", json=without, headers=member.branch.unit_agent())
    assert (r.status_code, r.json()["code"], r.json()["errors"][0]["loc"]) == \
        (422, "second_aid_per_period", ["body", "settlement"])
    # the bureau's record of the same stay
    sent = {**body["settlement"], "certno": member.certno, "insutype": "310",
            "setl_time": f"{body['discharge_date']} 10:00:00", "begndate": body["admission_date"],
            "enddate": body["discharge_date"], "dscg_maindiag_code": "I61.0", "dscg_maindiag_name": "脑出血"}
    r = await client.post("/api/v1/settlements", json=[sent], headers=bureau(member.branch))
    assert r.status_code in (200, 202), r.text
    r = await client.post("/api/v1/claims", json={"member_id": member.member_id, "plan": "second-aid",
                                                  "setl_id": sent["setl_id"]},
                          headers=member.branch.unit_agent())
    assert (r.status_code, r.json()["code"], r.json()["errors"][0]["loc"]) == \
        (422, "second_aid_per_period", ["body", "setl_id"])
    # The figures are refused on the per-period form too.
    r = await client.post("/api/v1/claims", json={"member_id": member.member_id, "plan": "second-aid",
                                                  "period": member.period, "second_aid": {"remaining_amount": "1"}},
                          headers=member.branch.unit_agent())
    assert (r.status_code, r.json()["code"]) == (422, "second_aid_per_period")

    claim = await second_aid(client, member)
    assert claim["second_aid"]["prior_second_aid"] == "0.00"  # nothing of the refused ones was stored
    assert claim["second_aid"]["remaining_amount"] == "100000.00"  # the bureau's record of the stay counts once
    assert claim["second_aid"]["years_of_participation"] == 1
    assert claim["aid_amount"] == "30000.00"  # 30% of 100,000, not 500,000.00


async def test_unclaimed_bureau_records_of_the_period_count_in_the_remaining_with_first_aid_0(
        rolled_back: ServiceClient) -> None:
    app, client = await rolled_back("claims")
    member = await member_of(app, name="欧阳翀", sex="female")
    first = await first_aid(client, member, true_remaining_100000(member))
    assert first["aid_amount"] == "265760.00"

    def record(psn_part: str, days_ago: int, med_type: str = "21") -> dict[str, Any]:
        day = TODAY - timedelta(days=days_ago)
        return {"setl_id": f"B{uuid.uuid4().hex}", "mdtrt_id": f"T{uuid.uuid4().hex}", "certno": member.certno,
                "med_type": med_type, "insutype": "310", "setl_time": f"{day.isoformat()} 10:00:00",
                "begndate": (day - timedelta(days=5)).isoformat(), "enddate": day.isoformat(),
                "medfee_sumamt": f"{Decimal(psn_part) * 2:.2f}", "fund_pay_sumamt": psn_part,
                "psn_part_amt": psn_part, "fulamt_ownpay_amt": "0.00"}

    never_claimed = record("50000.00", 30)   # a stay nobody claimed: counts, first aid 0
    under_start = record("650.00", 20)       # under the 800 start line, never worth a claim: counts
    outpatient = record("8000.00", 25, "14")  # 门诊慢特病: 第十二条第四款 excludes it
    reversed_ = record("70000.00", 15)       # reversed by the bureau: never counts
    before_cover = record("90000.00", 200)   # settled before this period's cover began (coverage from 180 days ago)
    records = [never_claimed, under_start, outpatient, reversed_, before_cover]
    r = await client.post("/api/v1/settlements", json=records, headers=bureau(member.branch))
    assert r.status_code in (200, 202), r.text
    r = await client.post("/api/v1/settlements", json=[{"setl_id": reversed_["setl_id"], "refd_setl_flag": "1"}],
                          headers=bureau(member.branch))
    assert r.status_code in (200, 202), r.text

    claim = await second_aid(client, member)
    facts = claim["second_aid"]
    # 365,760 + 50,000 + 650 self-pay - 265,760 first aid = 150,650.00 -> 30% = 45,195.00
    assert facts["psn_part_amt"] == "416410.00"
    assert facts["remaining_amount"] == "150650.00"
    assert (facts["stays"], facts["unclaimed_stays"]) == (3, 2)
    assert claim["aid_amount"] == "45195.00"


async def test_two_claims_of_one_member_submitted_at_once_share_the_bands_as_if_one_after_the_other(
        service_client: ServiceClient) -> None:
    # service_client, not rolled_back: the two requests run on two connections, and the second must see the
    # first's committed claim once the member's lock is released.
    app, client = await service_client("claims")
    member = await cover(app, await publish_period(app))
    bodies = [claim_body(member, base="10800.00", own_pay="0.00") for _ in range(2)]
    answers = await asyncio.gather(*(client.post("/api/v1/claims", json=b, headers=member.branch.unit_agent())
                                     for b in bodies))
    assert [a.status_code for a in answers] == [201, 201], [a.text for a in answers]
    aids = sorted(Decimal(a.json()["aid_amount"]) for a in answers)
    # One after the other: F(10,800) = 9,200 x 30% + 800 x 70% = 3,320.00, then F(21,600) - F(10,800) =
    # 2,760 + 11,600 x 70% - 3,320 = 7,560.00; total 10,880.00 (both at 3,320 would pay the start line twice).
    assert aids == [Decimal("3320.00"), Decimal("7560.00")]
    claims = [await get_claim(client, a.json()["claim_id"], member.token()) for a in answers]
    assert max(Decimal(c["cumulative_base"]) for c in claims) == Decimal("21600.00")
