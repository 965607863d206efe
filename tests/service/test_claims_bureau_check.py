"""A claim checked against the bureau's settlement record at intake (issue #12 part 3; seed 003 第九条: aid is
paid on the settlement data the medical-insurance bureau provides). Real PostgreSQL, the claims service
in-process; the bureau's records arrive through the real feed (POST /api/v1/settlements)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx

from tests.conftest import ServiceClient, token_for
from tests.service.test_claims import TODAY, Member, bureau, claim_body, setup


def record(member: Member, setl_id: str, *, base: str = "5000.00", own_pay: str = "1000.00") -> dict[str, Any]:
    """A bureau record whose base (psn_part_amt - fulamt_ownpay_amt) is `base`, with its stay and diagnosis."""
    psn_part = Decimal(base) + Decimal(own_pay)
    discharge = TODAY - timedelta(days=12)
    return {"setl_id": setl_id, "mdtrt_id": f"MD{setl_id}", "certno": member.certno, "med_type": "21",
            "insutype": "310", "setl_time": f"{discharge.isoformat()} 10:30:00",
            "medfee_sumamt": f"{psn_part * 3:.2f}", "fund_pay_sumamt": f"{psn_part * 2:.2f}",
            "psn_part_amt": f"{psn_part:.2f}", "fulamt_ownpay_amt": own_pay,
            "begndate": f"{(discharge - timedelta(days=9)).isoformat()} 08:30:00",
            "enddate": f"{discharge.isoformat()} 10:00:00",
            "dscg_maindiag_code": "I63.9", "dscg_maindiag_name": "脑梗死"}


async def feed(client: httpx.AsyncClient, member: Member, *records: dict[str, Any]) -> None:
    r = await client.post("/api/v1/settlements", json=list(records), headers=bureau(member.branch))
    assert r.status_code == 200 and r.json()["accepted"] == len(records), r.text


async def test_a_claim_naming_only_its_setl_id_takes_everything_from_the_bureau_record(
        rolled_back: ServiceClient) -> None:
    _, client, member = await setup(rolled_back)
    setl_id = f"S{uuid.uuid4().hex}"
    await feed(client, member, record(member, setl_id, base="5000.00"))
    r = await client.post("/api/v1/claims", json={"member_id": member.member_id, "plan": "inpatient",
                                                  "setl_id": setl_id}, headers=member.branch.unit_agent())
    assert r.status_code == 201, r.text
    assert r.json()["aid_amount"] == "1260.00"  # 第七条: (5000 - 800) x 30%
    assert r.json()["settlement_check"] == {"status": "verified", "differences": {}}
    claim = (await client.get(f"/api/v1/claims/{r.json()['claim_id']}", headers=member.branch.unit_agent())).json()
    assert claim["discharge_date"] == (TODAY - timedelta(days=12)).isoformat()
    assert claim["admission_date"] == (TODAY - timedelta(days=21)).isoformat()
    assert claim["diagnosis"] == {"icd10": "I63.9", "name": "脑梗死"} and claim["base"] == "5000.00"
    assert claim["settlement_check"]["status"] == "verified"


async def test_typed_in_figures_that_differ_are_assessed_on_the_bureau_figures_and_shown_as_a_mismatch(
        rolled_back: ServiceClient) -> None:
    """The case of issue #12: the bureau says base 5,000; typed in as 20,000 it was assessed at 9,760."""
    _, client, member = await setup(rolled_back)
    setl_id = f"S{uuid.uuid4().hex}"
    await feed(client, member, record(member, setl_id, base="5000.00"))
    body = claim_body(member, base="20000.00", setl_id=setl_id)
    r = await client.post("/api/v1/claims", json=body, headers=member.branch.unit_agent())
    assert r.status_code == 201, r.text
    assert r.json()["aid_amount"] == "1260.00"
    check = r.json()["settlement_check"]
    assert check["status"] == "mismatch"
    assert check["differences"]["psn_part_amt"] == {"typed": "21000.00", "bureau": "6000.00"}
    assert check["differences"]["discharge_date"]["bureau"] == (TODAY - timedelta(days=12)).isoformat()
    assert "fulamt_ownpay_amt" not in check["differences"]  # equal on both sides


async def test_a_claim_the_bureau_has_not_sent_is_unverified_and_one_naming_only_an_unknown_setl_id_is_refused(
        rolled_back: ServiceClient) -> None:
    _, client, member = await setup(rolled_back)
    r = await client.post("/api/v1/claims", json=claim_body(member, base="5000.00"), headers=member.branch.unit_agent())
    assert r.status_code == 201 and r.json()["aid_amount"] == "1260.00", r.text
    assert r.json()["settlement_check"] == {"status": "unverified", "differences": {}}
    r = await client.post("/api/v1/claims", json={"member_id": member.member_id, "setl_id": f"S{uuid.uuid4().hex}"},
                          headers=member.branch.unit_agent())
    assert r.status_code == 422 and r.json()["code"] == "settlement_not_found", r.text
    assert r.json()["errors"][0]["loc"] == ["body", "setl_id"]
    r = await client.post("/api/v1/claims", json={"member_id": member.member_id}, headers=member.branch.unit_agent())
    assert r.status_code == 422, r.text


async def test_a_member_claims_with_one_tap_from_the_bureau_record(rolled_back: ServiceClient) -> None:
    _, client, member = await setup(rolled_back)
    setl_id = f"S{uuid.uuid4().hex}"
    await feed(client, member, record(member, setl_id, base="2000.00"))
    me = token_for("member", member_id=member.member_id)
    r = await client.post("/api/v1/claims", json={"setl_id": setl_id}, headers=me)
    assert r.status_code == 201, r.text
    assert (r.json()["status"], r.json()["aid_amount"]) == ("in_review", "360.00")  # (2000 - 800) x 30%
    claim = (await client.get(f"/api/v1/claims/{r.json()['claim_id']}", headers=me)).json()
    assert claim["member_id"] == member.member_id and claim["settlement_check"]["status"] == "verified"
    # Someone else's settlement is claimed by no one: the record's certno is not the member's.
    _, _, stranger = await setup(rolled_back)
    other = f"S{uuid.uuid4().hex}"
    await feed(client, stranger, record(stranger, other, base="2000.00"))
    r = await client.post("/api/v1/claims", json={"setl_id": other}, headers=me)
    assert r.status_code == 422 and r.json()["code"] == "settlement_of_another_person", r.text
    assert r.json()["errors"][0]["loc"] == ["body", "setl_id"] and stranger.certno[-4:] not in r.text
    r = await client.post("/api/v1/claims", json=claim_body(member, setl_id=other), headers=member.branch.unit_agent())
    assert r.status_code == 422 and r.json()["code"] == "settlement_of_another_person", r.text
