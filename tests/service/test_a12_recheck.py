"""A claim made before the bureau sent its settlement (``unverified``) is checked and assessed again when the
record arrives (issue #12 item 3; seed 003 第九条 "凭医保部门提供的住院结算数据"): before final approval the claim
is updated; after it, a difference is an adjustment payments hears of (``claim.adjusted``), as a reversal's is.
Sending the record again changes nothing. Real PostgreSQL; the records through the real feed."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx

from tests.conftest import ServiceClient
from tests.service.test_a12_settlement_source import cover, setup
from tests.service.test_claims import TODAY, Member, bureau, claim_body, decide, get_claim, outbox_events, short
from tests.service.test_claims_bureau_check import record

DISCHARGE = TODAY - timedelta(days=12)


def typed(member: Member, base: str, setl_id: str) -> dict[str, Any]:
    """A claim typed in from the hospital's papers, for the stay the bureau's record() describes."""
    body = claim_body(member, base=base, setl_id=setl_id, discharge=DISCHARGE)
    body["admission_date"] = (DISCHARGE - timedelta(days=9)).isoformat()
    body["diagnosis"] = {"icd10": "I63.9", "name": "脑梗死"}
    return body


async def send(client: httpx.AsyncClient, member: Member, *records: dict[str, Any]) -> dict[str, Any]:
    r = await client.post("/api/v1/settlements", json=list(records), headers=bureau(member.branch))
    assert r.status_code == 200, r.text
    return dict(r.json())


async def test_a_record_arriving_after_the_claim_corrects_it_before_approval(rolled_back: ServiceClient) -> None:
    """The case of issue #12 the other way round: typed in at base 20,000 (aid 9,760, final at the office),
    the bureau later says 5,000: the claim is assessed at 1,260 and final at the agency point it has reached."""
    app, client, member = await setup(rolled_back, settlement_source="bureau_preferred")
    setl_id = f"S{short()}{short()}"
    r = await client.post("/api/v1/claims", json=typed(member, "20000.00", setl_id), headers=member.branch.unit_agent())
    assert r.status_code == 201 and r.json()["aid_amount"] == "9760.00", r.text
    claim_id = r.json()["claim_id"]
    assert r.json()["settlement_check"]["status"] == "unverified"

    answer = await send(client, member, record(member, setl_id, base="5000.00"))
    assert answer["accepted"] == 1 and answer["claims_checked"] == [claim_id] and answer["claims_made"] == 0
    claim = await get_claim(client, claim_id, member.branch.agency_reviewer())
    assert claim["settlement_check"]["status"] == "mismatch"
    assert claim["settlement_check"]["differences"]["psn_part_amt"] == {"typed": "21000.00", "bureau": "6000.00"}
    assert (claim["aid_amount"], claim["base"]) == ("1260.00", "5000.00")  # (5000 - 800) x 30%, 第七条
    assert claim["approval"]["final_level"] == "agency_point" and claim["status"] == "in_review"
    assert [a["announced"] for a in claim["adjustments"]] == [False]  # nothing was approved: payments not told
    assert [s["decision"] for s in claim["approval"]["steps"]] == ["submit", "settlement_check", "adjust"]
    assert await outbox_events(app, claim_id, "claim.adjusted") == []

    again = await send(client, member, record(member, setl_id, base="5000.00"))
    assert (again["duplicates"], again["claims_checked"]) == (1, [])
    assert await get_claim(client, claim_id, member.branch.agency_reviewer()) == claim  # nothing changed

    approved = await decide(client, claim_id, member.branch.agency_reviewer())
    assert approved.status_code == 200 and approved.json()["status"] == "approved", approved.text
    events = await outbox_events(app, claim_id, "claim.approved")
    assert [e["payload"]["aid_amount"] for e in events] == ["1260.00"]


async def test_a_record_arriving_after_approval_becomes_an_adjustment_payments_hears_of(
        rolled_back: ServiceClient) -> None:
    app, client, member = await setup(rolled_back)
    setl_id = f"S{short()}{short()}"
    r = await client.post("/api/v1/claims", json=typed(member, "5000.00", setl_id), headers=member.branch.unit_agent())
    assert r.status_code == 201 and r.json()["aid_amount"] == "1260.00", r.text
    claim_id = r.json()["claim_id"]
    assert (await decide(client, claim_id, member.branch.agency_reviewer())).status_code == 200

    answer = await send(client, member, record(member, setl_id, base="11000.00"))
    assert answer["claims_checked"] == [claim_id]
    claim = await get_claim(client, claim_id, member.branch.agency_reviewer())
    assert claim["status"] == "approved" and claim["aid_amount"] == "3460.00"  # 2,760 + 700, 第七条
    assert claim["assessed_aid_amount"] == "1260.00"  # history kept: the difference is an adjustment
    [adjustment] = claim["adjustments"]
    assert (adjustment["amount"], adjustment["cause"], adjustment["announced"]) == ("2200.00", "settlement_checked",
                                                                                    True)
    [event] = await outbox_events(app, claim_id, "claim.adjusted")
    assert (event["payload"]["amount"], event["payload"]["aid_amount"]) == ("2200.00", "3460.00")
    assert claim["settlement_check"]["status"] == "mismatch"

    # the same record again, and the feed once more in another order: nothing more
    again = await send(client, member, record(member, setl_id, base="11000.00"))
    assert again["claims_checked"] == []
    assert len(await outbox_events(app, claim_id, "claim.adjusted")) == 1
    assert len((await get_claim(client, claim_id, member.branch.agency_reviewer()))["adjustments"]) == 1


async def test_a_matching_record_verifies_the_claim_and_releases_a_bureau_required_hold(
        rolled_back: ServiceClient) -> None:
    _, client, member = await setup(rolled_back, settlement_source="bureau_required")
    setl_id = f"S{short()}{short()}"
    r = await client.post("/api/v1/claims", json=typed(member, "5000.00", setl_id), headers=member.branch.unit_agent())
    assert r.status_code == 201, r.text
    claim_id = r.json()["claim_id"]
    held = await decide(client, claim_id, member.branch.agency_reviewer())
    assert held.status_code == 409 and held.json()["code"] == "settlement_unverified", held.text

    answer = await send(client, member, record(member, setl_id, base="5000.00"))
    assert answer["claims_checked"] == [claim_id]
    claim = await get_claim(client, claim_id, member.branch.agency_reviewer())
    assert claim["settlement_check"] == {"status": "verified", "differences": {}}
    assert claim["aid_amount"] == "1260.00" and claim["adjustments"] == []  # same figures: nothing to adjust
    approved = await decide(client, claim_id, member.branch.agency_reviewer())
    assert approved.status_code == 200 and approved.json()["status"] == "approved", approved.text


async def test_a_later_stay_of_the_member_follows_the_corrected_base(rolled_back: ServiceClient) -> None:
    """第八条: bases accumulate in the period; the first stay's base corrected by the bureau moves the second's aid."""
    _, client, member = await setup(rolled_back)
    first, second = f"S{short()}{short()}", f"S{short()}{short()}"
    one = await client.post("/api/v1/claims", json=typed(member, "5000.00", first), headers=member.branch.unit_agent())
    two = await client.post("/api/v1/claims", json=typed(member, "8000.00", second),
                            headers=member.branch.unit_agent())
    assert one.status_code == two.status_code == 201
    assert (one.json()["aid_amount"], two.json()["aid_amount"]) == ("1260.00", "3600.00")  # F(13000) = 4860
    await send(client, member, record(member, first, base="2000.00"))
    later = await get_claim(client, two.json()["claim_id"], member.branch.agency_reviewer())
    assert later["aid_amount"] == "2400.00"  # F(10000) - F(2000) = 2760 - 360
    assert later["settlement_check"]["status"] == "unverified"  # its own record has not come


async def test_a_record_of_another_persons_stay_under_the_claims_setl_id_holds_it(
        rolled_back: ServiceClient) -> None:
    """The bureau's record says the settlement the claim names is someone else's: the reviewer sees the masked
    ID numbers, nothing is re-assessed on it, and no final approval is given on it whatever the rulebook says."""
    app, client, member = await setup(rolled_back)
    other = await cover(app, member.period, member.branch)
    setl_id = f"S{short()}{short()}"
    r = await client.post("/api/v1/claims", json=typed(member, "5000.00", setl_id), headers=member.branch.unit_agent())
    assert r.status_code == 201, r.text
    claim_id = r.json()["claim_id"]
    answer = await send(client, member, record(other, setl_id, base="90000.00"))
    assert answer["claims_checked"] == [claim_id]
    claim = await get_claim(client, claim_id, member.branch.agency_reviewer())
    shown = claim["settlement_check"]["differences"]["certno"]
    assert claim["settlement_check"]["status"] == "mismatch" and claim["aid_amount"] == "1260.00"
    assert shown["bureau"].endswith(other.certno[-4:]) and other.certno not in str(claim)
    refused = await decide(client, claim_id, member.branch.agency_reviewer())
    assert refused.status_code == 409 and refused.json()["code"] == "settlement_of_another_person", refused.text
