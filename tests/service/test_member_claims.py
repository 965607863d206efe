"""The member's own claims and bureau records (services/claims/member_claims.py, issue #13 items 2-3): the
timeline from claim steps and payment events (late, twice, out of order), the aid told band by band, missing
documents, and the stays no live claim uses yet; the member's own only, no identity fields of the raw record."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from services.claims.domain.approval import day_of
from shared.events import PaymentFailed, PaymentInstructionCreated, PaymentSettled
from tests.conftest import ServiceClient, apply_event, token_for
from tests.service.test_claims import bureau, claim_body, decide, settlement, setup, short
from tests.service.test_claims_lifecycle import approve_through


async def test_a_claim_followed_from_submission_to_paid_after_a_failed_transfer(rolled_back: ServiceClient) -> None:
    app, client, member = await setup(rolled_back)
    branch = member.branch
    body = claim_body(member, base="11000.00", own_pay="1000.00")  # F(11000) = 3460.00: agency point, then office
    created = await client.post("/api/v1/claims", json=body, headers=branch.unit_agent())
    assert created.status_code == 201, created.text
    claim_id = created.json()["claim_id"]
    staff_view = (await client.get(f"/api/v1/claims/{claim_id}", headers=branch.unit_agent())).json()
    discharge = date.fromisoformat(staff_view["discharge_date"])
    submitted_day = day_of(datetime.fromisoformat(staff_view["created_at"]))
    # the claim's clock (issue #12 §7): days from the discharge, null until a step is reached
    assert staff_view["clock"] == {"days_to_submission": (submitted_day - discharge).days,
                                   "days_to_approval": None, "days_to_payment": None}

    [mine] = (await client.get("/api/v1/me/claims", headers=member.token())).json()
    assert mine["status"] == "in_review" and mine["status_text"] == "审核中"
    assert [e["kind"] for e in mine["timeline"]] == ["submitted"]
    assert mine["missing_documents"] == ["settlement_sheet", "discharge_certificate", "id_card", "bank_card"]
    assert mine["missing_documents_text"][0] == "医保结算单"
    aid = mine["aid"]
    assert aid["amount"] == "3460.00" and aid["base"] == "11000.00"
    told = "".join(aid["explanation"])
    assert "800元及以下的部分为起付标准" in told and "按 30% 补助 2760.00 元" in told
    assert "按 70% 补助 700.00 元" in told and aid["explanation"][-1] == "本次补助 3460.00 元。"

    r = await decide(client, claim_id, branch.agency_reviewer(), "return", reason="请补充出院证")
    assert r.status_code == 200, r.text
    r = await client.post(f"/api/v1/claims/{claim_id}/resubmission", json={"note": "已补"}, headers=branch.unit_agent())
    assert r.status_code == 200, r.text
    assert (await approve_through(client, member, claim_id))["status"] == "approved"

    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    now = datetime.now(UTC)
    events = [  # the payment's story, applied out of order and one of them twice
        (PaymentFailed(instruction_id=first, claim_id=claim_id, member_id=member.member_id,
                       reason="账户已销户", attempt=1), now + timedelta(minutes=2)),
        (PaymentInstructionCreated(instruction_id=first, claim_id=claim_id, member_id=member.member_id, attempt=1,
                                   amount=Decimal("3460.00")), now + timedelta(minutes=1)),
        (PaymentInstructionCreated(instruction_id=second, claim_id=claim_id, member_id=member.member_id, attempt=2,
                                   amount=Decimal("3460.00")), now + timedelta(minutes=3)),
        (PaymentSettled(instruction_id=second, claim_id=claim_id, member_id=member.member_id, attempt=2,
                        amount=Decimal("3460.00")), now + timedelta(minutes=4)),
    ]
    for payload, at in events:
        envelope = payload.envelope().model_copy(update={"occurred_at": at})
        assert await apply_event(app, payload, envelope)
    payload, at = events[0]
    assert await apply_event(app, payload, payload.envelope().model_copy(update={"occurred_at": at}))  # again

    [mine] = (await client.get("/api/v1/me/claims", headers=member.token())).json()
    assert mine["status"] == "paid" and mine["missing_documents"] == []
    staff_view = (await client.get(f"/api/v1/claims/{claim_id}", headers=branch.unit_agent())).json()
    final_approval = max(s["at"] for s in staff_view["approval"]["steps"] if s["decision"] == "approve")
    assert staff_view["clock"] == {
        "days_to_submission": (submitted_day - discharge).days,
        "days_to_approval": (day_of(datetime.fromisoformat(final_approval)) - discharge).days,
        "days_to_payment": (day_of(now + timedelta(minutes=4)) - discharge).days}  # payment.paid's occurred_at
    kinds = [e["kind"] for e in mine["timeline"]]
    assert kinds == ["submitted", "returned", "resubmitted", "level_approved", "approved", "payment_instruction",
                     "payment_failed", "payment_instruction", "paid"]
    returned = mine["timeline"][1]
    assert returned["level"] == "agency_point" and returned["reason"] == "请补充出院证"
    failed = mine["timeline"][6]
    assert failed["reason"] == "账户已销户" and "账户已销户" in failed["text"]
    assert mine["timeline"][-1]["amount"] == "3460.00"
    times = [e["at"] for e in mine["timeline"]]
    assert times == sorted(times)

    # Someone else's token sees none of it; staff use the claim itself, not /me.
    other = await client.get("/api/v1/me/claims", headers=token_for("member", member_id=f"M{short()}"))
    assert other.status_code == 200 and other.json() == []
    assert (await client.get("/api/v1/me/claims", headers=branch.unit_agent())).status_code == 403


async def test_a_claim_refused_at_submission_says_why(rolled_back: ServiceClient) -> None:
    _, client, member = await setup(rolled_back)
    r = await client.post("/api/v1/claims", json=claim_body(member, med_type="11"), headers=member.branch.unit_agent())
    assert r.status_code == 201 and r.json()["status"] == "rejected", r.text
    [mine] = (await client.get("/api/v1/me/claims", headers=member.token())).json()
    assert [e["kind"] for e in mine["timeline"]] == ["submitted", "refused"]
    assert mine["rejection"]["code"] == "excluded_outpatient" and mine["timeline"][1]["reason"]
    assert mine["status_text"] == "不予补助" and mine["missing_documents"] == []


async def test_my_settlements_are_the_bureau_records_no_live_claim_uses(rolled_back: ServiceClient) -> None:
    _, client, member = await setup(rolled_back)
    stays = {name: f"S{uuid.uuid4().hex}" for name in ("free", "claimed", "refused", "reversed")}
    records = [settlement(stays["free"], member, fixmedins_name="昆明医科大学第一附属医院", begndate="2026-10-02",
                          enddate="2026-10-09 10:30:00", dscg_maindiag_code="I21.9", dscg_maindiag_name="急性心肌梗死",
                          psn_name="王芳", mdtrt_id=f"V{short()}"),
               settlement(stays["claimed"], member), settlement(stays["refused"], member),
               settlement(stays["reversed"], member, mdtrt_id="VREV" + short())]
    r = await client.post("/api/v1/settlements", json=records, headers=bureau(member.branch))
    assert r.status_code == 200 and r.json()["accepted"] == 4, r.text
    agent = member.branch.unit_agent()
    ok = await client.post("/api/v1/claims", json=claim_body(member, setl_id=stays["claimed"]), headers=agent)
    assert ok.status_code == 201 and ok.json()["status"] == "in_review", ok.text
    refused = await client.post("/api/v1/claims", json=claim_body(member, setl_id=stays["refused"], med_type="11"),
                                headers=agent)
    assert refused.json()["status"] == "rejected"
    reversal = settlement(f"R{short()}", member, mdtrt_id=records[3]["mdtrt_id"], refd_setl_flag="1",
                          medfee_sumamt="-30000.00", psn_part_amt="-12000.00", fulamt_ownpay_amt="-1000.00")
    assert (await client.post("/api/v1/settlements", json=[reversal], headers=bureau(member.branch))).status_code == 200

    r = await client.get("/api/v1/me/settlements", headers=member.token())
    assert r.status_code == 200, r.text
    mine = {s["setl_id"]: s for s in r.json()}
    assert set(mine) == {stays["free"], stays["refused"]}  # a refused claim leaves its stay claimable
    free = mine[stays["free"]]
    assert free["hospital"] == "昆明医科大学第一附属医院" and free["admission_date"] == "2026-10-02"
    assert free["discharge_date"] == "2026-10-09" and free["diagnosis_code"] == "I21.9"
    assert free["psn_part_amt"] == "12000.00" and free["fulamt_ownpay_amt"] == "1000.00"
    assert member.certno not in r.text and "*" in free["certno"] and "psn_name" not in free

    other = await client.get("/api/v1/me/settlements", headers=token_for("member", member_id=f"M{short()}"))
    assert other.status_code == 200 and other.json() == []
    assert (await client.get("/api/v1/me/settlements", headers=bureau(member.branch))).status_code == 403
