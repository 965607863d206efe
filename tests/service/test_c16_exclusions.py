"""第十二条 exclusions no data shows, as a reviewer's checklist (issue #16 item 3): the claim view shows the
period's `exclusions_checklist`, the approving decision must answer every item (none applying), the answers are
recorded with the decision, and a rejection may cite an item as its reason code. Day surgery (28) is an
admission: claimed like any stay.
"""

from __future__ import annotations

import uuid

from tests.conftest import ServiceClient
from tests.service.test_claims import claim_body, get_claim, setup

YUNNAN_ITEMS = ["excluded_work_injury", "excluded_third_party", "excluded_new_local_payments", "excluded_fraud"]
NONE_APPLIES = {code: False for code in YUNNAN_ITEMS}


async def test_the_reviewer_sees_the_checklist_and_cannot_approve_without_answering_it(
        rolled_back: ServiceClient) -> None:
    _app, client, member = await setup(rolled_back)
    branch = member.branch
    # base 2,000 under yunnan-18: aid 360.00, final approval by the agency point (第十条)
    r = await client.post("/api/v1/claims", json=claim_body(member, base="2000.00"), headers=branch.unit_agent())
    assert r.status_code == 201 and r.json()["aid_amount"] == "360.00", r.text
    claim_id = r.json()["claim_id"]
    shown = await get_claim(client, claim_id, branch.agency_reviewer())
    assert [i["code"] for i in shown["exclusions_checklist"]] == YUNNAN_ITEMS
    third = shown["exclusions_checklist"][1]
    assert third["article"] == "第十二条第三款" and "第三方" in third["text"] and third["applies"] is None

    url = f"/api/v1/claims/{claim_id}/decisions"
    reviewer = branch.agency_reviewer()
    r = await client.post(url, json={"decision": "approve"}, headers=reviewer)
    assert r.status_code == 422 and r.json()["code"] == "exclusions_checklist_incomplete", r.text
    assert [e["loc"] for e in r.json()["errors"]] == [["body", "exclusions_checklist", c] for c in YUNNAN_ITEMS]
    assert "第十二条" in r.json()["detail"]

    partly = {c: False for c in YUNNAN_ITEMS[:3]}
    r = await client.post(url, json={"decision": "approve", "exclusions_checklist": partly}, headers=reviewer)
    assert r.status_code == 422 and [e["loc"][-1] for e in r.json()["errors"]] == ["excluded_fraud"]

    r = await client.post(url, json={"decision": "approve", "exclusions_checklist": {
        **NONE_APPLIES, "drunk_driving": False}}, headers=reviewer)
    assert r.status_code == 422 and r.json()["code"] == "exclusion_unknown"
    assert r.json()["errors"][0]["loc"] == ["body", "exclusions_checklist", "drunk_driving"]

    r = await client.post(url, json={"decision": "approve", "exclusions_checklist": {
        **NONE_APPLIES, "excluded_third_party": True}}, headers=reviewer)
    assert r.status_code == 422 and r.json()["code"] == "exclusion_applies"
    assert r.json()["errors"][0]["loc"] == ["body", "exclusions_checklist", "excluded_third_party"]

    unchanged = await get_claim(client, claim_id, reviewer)  # nothing half-stored by the refusals
    assert unchanged["status"] == "in_review" and len(unchanged["approval"]["steps"]) == 1

    r = await client.post(url, json={"decision": "approve", "exclusions_checklist": NONE_APPLIES},
                          headers=branch.agency_reviewer(user_id="reviewer-杨"))
    assert r.status_code == 200 and r.json()["status"] == "approved", r.text
    step = r.json()["approval"]["steps"][-1]
    assert step["decision"] == "approve" and step["exclusions_checklist"] == NONE_APPLIES
    assert all(i["applies"] is False and i["answered_at"] for i in r.json()["exclusions_checklist"])


async def test_a_lower_level_passes_the_claim_up_without_the_checklist_the_approving_level_answers_it(
        rolled_back: ServiceClient) -> None:
    _app, client, member = await setup(rolled_back)
    branch = member.branch
    r = await client.post("/api/v1/claims", json=claim_body(member, base="11000.00"), headers=branch.unit_agent())
    claim_id = r.json()["claim_id"]  # aid 3,460.00: the agency point reviews, the office approves
    url = f"/api/v1/claims/{claim_id}/decisions"
    r = await client.post(url, json={"decision": "approve"}, headers=branch.agency_reviewer())
    assert r.status_code == 200 and r.json()["approval"]["current_level"] == "office", r.text
    r = await client.post(url, json={"decision": "approve"}, headers=branch.office_reviewer())
    assert r.status_code == 422 and r.json()["code"] == "exclusions_checklist_incomplete"
    r = await client.post(url, json={"decision": "approve", "exclusions_checklist": NONE_APPLIES},
                          headers=branch.office_reviewer())
    assert r.status_code == 200 and r.json()["status"] == "approved"


async def test_a_rejection_cites_a_checklist_item_and_records_it_as_applying(rolled_back: ServiceClient) -> None:
    _app, client, member = await setup(rolled_back)
    branch = member.branch
    r = await client.post("/api/v1/claims", json=claim_body(member, base="2000.00"), headers=branch.unit_agent())
    claim_id = r.json()["claim_id"]
    r = await client.post(f"/api/v1/claims/{claim_id}/decisions", json={
        "decision": "reject", "reason": "交通事故对方全责，应由第三方承担", "reason_code": "excluded_third_party"},
        headers=branch.agency_reviewer())
    assert r.status_code == 200, r.text
    rejected = r.json()
    assert rejected["status"] == "rejected" and rejected["rejection"]["code"] == "excluded_third_party"
    assert rejected["approval"]["steps"][-1]["exclusions_checklist"] == {"excluded_third_party": True}
    item = next(i for i in rejected["exclusions_checklist"] if i["code"] == "excluded_third_party")
    assert item["applies"] is True


async def test_day_surgery_is_an_admission_and_is_aided(rolled_back: ServiceClient) -> None:
    _app, client, member = await setup(rolled_back)
    r = await client.post("/api/v1/claims", json=claim_body(member, base="2000.00", med_type="28",
                                                            setl_id=f"DS{uuid.uuid4().hex}"),
                          headers=member.branch.unit_agent())
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "in_review" and r.json()["aid_amount"] == "360.00" and r.json()["rejection"] is None
