"""The member app as member1 uses it, over HTTP against the real stack (issue #13): sign up with a code the
local SMS endpoint receives, see the cover and its fee, see the bureau's record of a stay, follow the claim on
it to paid in /me/claims, and get the SMS (local SMS endpoint) and the e-mail (local SMTP server)."""

from __future__ import annotations

import io
import re
import uuid
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from PIL import Image

from deploy.client import Session, wait_for
from deploy.localstack import Stack
from tests.e2e.conftest import PASSWORD, World
from tests.e2e.test_claim_journey import approve_all_levels, instructions

pytestmark = pytest.mark.e2e


def bureau_record(member: dict[str, Any]) -> dict[str, Any]:
    """A settlement as the bureau's feed sends it (national field names): a 7-day stay, 3000.00 borne by the
    person, nothing fully self-paid, so the base is 3000.00 and the aid 0.30 x (3000 - 800) = 660.00 (第七条)."""
    discharge = date.today() - timedelta(days=3)
    return {"setl_id": f"S-{uuid.uuid4().hex[:12]}", "mdtrt_id": f"V-{uuid.uuid4().hex[:10]}",
            "psn_name": member["name"], "certno": member["certno"], "insutype": "310", "med_type": "21",
            "begndate": (discharge - timedelta(days=7)).isoformat(), "enddate": discharge.isoformat(),
            "fixmedins_name": "昆明市第一人民医院", "dscg_maindiag_code": "J18.9", "dscg_maindiag_name": "肺炎",
            "setl_time": f"{discharge.isoformat()} 10:12:40", "medfee_sumamt": "10000.00",
            "fund_pay_sumamt": "7000.00", "psn_part_amt": "3000.00", "fulamt_ownpay_amt": "0.00"}


def one_tap_claim(member: Session, record: dict[str, Any]) -> dict[str, Any]:
    """零跑腿: the member names the bureau's record and the plan; dates, diagnosis and figures come from the record
    (issue #13 item 3, issue #12 part 3)."""
    return dict(member.post("claims", "/api/v1/claims", json={"plan": "inpatient", "setl_id": record["setl_id"]}))


def jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 24), (200, 180, 20)).save(out, "JPEG")
    return out.getvalue()


def test_member1_signs_up_sees_the_cover_claims_a_bureau_record_and_follows_it_to_paid(
        stack: Stack, world: World) -> None:
    assert stack.sms is not None and stack.mail is not None
    sms, mail = stack.sms, stack.mail
    # The fifth person of the roster: no other e2e test claims for them, so this stay is their first in the
    # period and its aid is F(3000) alone.
    person, member_id = world.members[4], world.member_ids[4]
    phone, certno = str(person["phone"]), str(person["certno"])
    enrollment = stack.url("enrollment")

    # Sign up: ID number and phone, a code by SMS to the roster's phone, then the account.
    r = httpx.post(f"{enrollment}/api/v1/member-accounts/signup", json={"certno": certno, "phone": phone}, timeout=30)
    assert r.status_code == 202, r.text
    [code_sms] = wait_for("the sign-up code", lambda: [m for m in sms.received
                                                       if m["phone"] == phone and m["template"] == "signup_code"])
    match = re.search(r"验证码 (\d{6})", code_sms["text"])
    assert match is not None and certno not in code_sms["text"]
    username = f"member1-{uuid.uuid4().hex[:4]}"
    r = httpx.post(f"{enrollment}/api/v1/member-accounts/signup/confirm", timeout=30, json={
        "certno": certno, "phone": phone, "code": match.group(1), "username": username, "password": PASSWORD})
    assert r.status_code == 201 and r.json()["member_id"] == member_id, r.text
    member = world.api.login(username, PASSWORD)

    # My cover: covered in the period, the fee paid.
    me = member.get("enrollment", "/api/v1/me")
    assert me["name"] == person["name"] and me["certno"] != certno and "****" in me["phone"]
    [cover] = me["coverages"]
    assert (cover["period"], cover["status"], cover["fee_state"], cover["fee"]) == (world.period, "covered", "paid",
                                                                                   "150.00")

    # The unit agent records the member's e-mail: messages go there too.
    agent = world.login("agent")
    email = f"member1-{uuid.uuid4().hex[:6]}@example.com"
    agent.call("PATCH", "enrollment", f"/api/v1/members/{member_id}", json={"email": email, "reason": "e2e"})

    # The bureau sends the record of a stay; the member sees it as claimable.
    centre = world.unit.split("-")[0]
    bureau_name = f"bureau-{uuid.uuid4().hex[:4]}"
    world.admin.post("enrollment", "/api/v1/users", json={"username": bureau_name, "password": PASSWORD,
                                                          "role": "bureau", "org": centre})
    record = bureau_record(person)
    fed = world.api.login(bureau_name, PASSWORD).post("claims", "/api/v1/settlements", json=[record])
    assert fed["accepted"] == 1, fed
    [stay] = [s for s in member.get("claims", "/api/v1/me/settlements") if s["setl_id"] == record["setl_id"]]
    assert stay["hospital"] == "昆明市第一人民医院" and stay["psn_part_amt"] == "3000.00" and certno not in str(stay)

    # The claim on it; the record is then no longer offered.
    claim = one_tap_claim(member, record)
    assert claim["status"] == "in_review" and claim["aid_amount"] == "660.00", claim
    assert claim["settlement_check"] == {"status": "verified", "differences": {}}, claim
    assert record["setl_id"] not in {s["setl_id"] for s in member.get("claims", "/api/v1/me/settlements")}
    # A photo of the bank card from the phone.
    r = httpx.post(f"{stack.url('claims')}/api/v1/claims/{claim['claim_id']}/documents", timeout=30,
                   headers={"Authorization": f"Bearer {member.token}"},
                   files={"file": ("card.jpg", jpeg(), "image/jpeg")}, data={"doc_type": "bank_card"})
    assert r.status_code == 201, r.text
    [mine] = [c for c in member.get("claims", "/api/v1/me/claims") if c["claim_id"] == claim["claim_id"]]
    assert mine["status"] == "in_review" and "bank_card" not in mine["missing_documents"]
    assert "id_card" in mine["missing_documents"] and "本次补助 660.00 元。" in mine["aid"]["explanation"]

    # Approved, paid by finance through a released batch.
    assert approve_all_levels(world, claim["claim_id"])["status"] == "approved"
    [line] = wait_for("the instruction", lambda: instructions(world, claim["claim_id"]))
    finance, second = world.login("finance"), world.login("finance2")
    batch = finance.post("payments", "/api/v1/payment-batches", json={"format": "bank_csv"})
    second.post("payments", f"/api/v1/payment-batches/{batch['batch_id']}/release")
    finance.post("payments", f"/api/v1/payment-batches/{batch['batch_id']}/results",
                 json=[{"instruction_id": line["instruction_id"], "status": "paid", "reason": ""}])

    # Followed to paid in the app.
    [paid] = wait_for("the claim paid in /me/claims", lambda: [
        c for c in member.get("claims", "/api/v1/me/claims") if c["claim_id"] == claim["claim_id"]
        and c["status"] == "paid" and c["timeline"][-1]["kind"] == "paid"
        and any(e["kind"] == "batch_released" for e in c["timeline"])])  # two keys: the release may come last
    kinds = [e["kind"] for e in paid["timeline"]]
    assert kinds == ["submitted", "approved", "payment_instruction", "batch_released", "paid"], kinds
    assert paid["timeline"][-1]["amount"] == "660.00" and paid["status_text"] == "已付款"
    assert Decimal(paid["aid"]["amount"]) == Decimal("660.00")

    # The SMS and the e-mail of the payment reached the member.
    [paid_sms] = wait_for("the paid SMS", lambda: [m for m in sms.received
                                                   if m["phone"] == phone and m["template"] == "payment_paid"])
    assert "660.00 元" in paid_sms["text"] and certno not in paid_sms["text"]
    assert str(person["bank_account"]) not in paid_sms["text"]
    [paid_mail] = wait_for("the paid e-mail", lambda: [m for m in mail.messages
                                                       if m["To"] == email and "已转入" in m.get_content()])
    assert "660.00 元" in paid_mail.get_content() and certno not in paid_mail.get_content()
    # The feed shows each delivery: the SMS delivered (the local endpoint's receipt), the e-mail sent.
    wait_for("the SMS receipt", lambda: [n for n in member.get("notifications", "/api/v1/me/notifications")
                                         if n["template"] == "payment_paid" and {
                                             d["channel"]: d["status"] for d in n["deliveries"]} == {
                                             "in_app": "delivered", "sms": "delivered", "email": "sent"}])
    # The code was never in any feed.
    assert all("验证码" not in n["text"] for n in member.get("notifications", "/api/v1/me/notifications"))

    # A new phone from the app: a code by SMS to the phone on file, then PATCH /me; the change is told at the
    # phone the member had.
    new_phone = "139" + phone[3:] if not phone.startswith("139") else "138" + phone[3:]
    sent = member.post("enrollment", "/api/v1/me/contact-change", json={"phone": new_phone})
    assert sent["phone"] == phone[:3] + "****" + phone[-4:]
    [change_sms] = wait_for("the contact-change code", lambda: [
        m for m in sms.received if m["phone"] == phone and m["template"] == "contact_code"])
    match = re.search(r"验证码 (\d{6})", change_sms["text"])
    assert match is not None
    changed = member.call("PATCH", "enrollment", "/api/v1/me", json={"phone": new_phone, "code": match.group(1)})
    assert changed["phone"] == new_phone[:3] + "****" + new_phone[-4:]
    [told] = wait_for("the contact-changed SMS at the previous phone", lambda: [
        m for m in sms.received if m["phone"] == phone and m["template"] == "contact_changed"])
    assert new_phone not in told["text"] and certno not in told["text"]
    assert all(match.group(1) not in n["text"] for n in member.get("notifications", "/api/v1/me/notifications"))
