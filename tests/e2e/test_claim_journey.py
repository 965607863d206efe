"""A claim travels over HTTP from a unit's roster to a bank-transfer instruction and a message to the member,
through all four services and Kafka; then the two delivery faults that matter most."""

from __future__ import annotations

import re
import signal
import time
import uuid
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from deploy.client import ApiError, Session, wait_for
from deploy.localstack import SERVICES, Stack
from tests.e2e.conftest import World

pytestmark = pytest.mark.e2e
REVIEWER = {"agency_point": "agency", "office": "office", "centre": "centre"}


def claim_body(member_id: str, psn_part_amt: str, fulamt: str = "0.00") -> dict[str, Any]:
    discharge = date.today() - timedelta(days=2)
    return {"member_id": member_id, "plan": "inpatient",
            "admission_date": (discharge - timedelta(days=6)).isoformat(), "discharge_date": discharge.isoformat(),
            "diagnosis": {"icd10": "I21.9", "name": "急性心肌梗死"},
            "settlement": {"setl_id": f"S-{uuid.uuid4().hex[:12]}", "med_type": "21", "medfee_sumamt": "50000.00",
                           # the bill is what the funds paid plus what the person bore (issue 9 §4)
                           "fund_pay_sumamt": f"{Decimal('50000.00') - Decimal(psn_part_amt):.2f}",
                           "psn_part_amt": psn_part_amt, "fulamt_ownpay_amt": fulamt}}


def approve_all_levels(world: World, claim_id: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    agent = world.login("agent")
    detail = agent.get("claims", f"/api/v1/claims/{claim_id}")
    while detail["status"] == "in_review":
        reviewer = world.login(REVIEWER[detail["approval"]["current_level"]])
        detail = reviewer.post("claims", f"/api/v1/claims/{claim_id}/decisions", json={"decision": "approve", "exclusions_checklist": {  # 第十二条: none applies
                                   i["code"]: False for i in detail["exclusions_checklist"]}},
                               headers=headers or {})
    return detail


def instructions(world: World, claim_id: str) -> list[dict[str, Any]]:
    finance: Session = world.login("finance")
    return list(finance.get("payments", "/api/v1/payment-instructions", params={"claim_id": claim_id}))


def metric(stack: Stack, service: str, name: str) -> float:
    text = httpx.get(f"{stack.url(service)}/metrics", timeout=5).text
    match = re.search(rf"^{name} ([0-9.e+]+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


def test_all_four_services_answer_ready(stack: Stack) -> None:
    for name in SERVICES:
        r = httpx.get(f"{stack.url(name)}/readyz", timeout=5)
        assert r.status_code == 200, (name, r.text)
        assert r.json()["checks"] == {"database": "ok", "kafka": "ok"}


def test_a_claim_goes_from_roster_to_payment_instruction_and_the_members_feed(stack: Stack, world: World) -> None:
    agent = world.login("agent")
    member_id = world.member_ids[0]
    correlation = f"e2e-{uuid.uuid4().hex}"
    # The member gives an e-mail address (their unit agent records it): messages then arrive there too.
    email = f"member0-{uuid.uuid4().hex[:6]}@example.com"
    agent.call("PATCH", "enrollment", f"/api/v1/members/{member_id}", json={"email": email, "reason": "e2e"})
    # base = 12000 - 1000 = 11000 -> F = 0.30 * 9200 + 0.70 * 1000 = 3460.00 (第八条): the office decides.
    claim = agent.post("claims", "/api/v1/claims", json=claim_body(member_id, "12000.00", "1000.00"))
    assert claim["status"] == "in_review" and claim["aid_amount"] == "3460.00"
    detail = agent.get("claims", f"/api/v1/claims/{claim['claim_id']}")
    assert detail["approval"]["current_level"] == "agency_point"
    assert detail["approval"]["final_level"] == "office"
    # The agency point's second reviewer cannot skip ahead: the office level is not theirs.
    with pytest.raises(ApiError) as wrong_level:
        world.login("office").post("claims", f"/api/v1/claims/{claim['claim_id']}/decisions",
                                   json={"decision": "approve"})
    assert wrong_level.value.status == 403
    # The final approval's correlation id must travel to the payment instruction it causes.
    detail = approve_all_levels(world, claim["claim_id"], headers={"X-Correlation-ID": correlation})
    assert detail["status"] == "approved"
    assert [s["level"] for s in detail["approval"]["steps"] if s["decision"] == "approve"] == ["agency_point",
                                                                                               "office"]
    found = wait_for("one payment instruction", lambda: instructions(world, claim["claim_id"]))
    assert len(found) == 1
    assert found[0]["amount"] == "3460.00" and found[0]["status"] == "pending"
    assert found[0]["payee_name"] == world.members[0]["name"]
    account = world.members[0]["bank_account"]  # masked for finance too; whole only in the released file
    assert found[0]["account"] == account[:4] + "*" * (len(account) - 8) + account[-4:]
    member = world.api.login("member0", "e2e-password")
    feed = wait_for("the approval message", lambda: [n for n in member.get("notifications", "/api/v1/me/notifications")
                                                     if n["template"] == "claim_approved"])
    assert "3460.00" in feed[0]["text"]
    # The delivery worker sent it: an SMS recorded by the local endpoint, an e-mail received by the local SMTP
    # server, and the feed shows both deliveries as sent.
    assert stack.sms is not None and stack.mail is not None
    phone = str(world.members[0]["phone"])
    [sms] = wait_for("the approval SMS", lambda: [m for m in stack.sms.received  # type: ignore[union-attr]
                                                  if m["phone"] == phone and m["template"] == "claim_approved"])
    assert "3460.00 元" in sms["text"] and str(world.members[0]["certno"]) not in sms["text"]
    [mail] = wait_for("the approval e-mail", lambda: [m for m in stack.mail.messages  # type: ignore[union-attr]
                                                      if m["To"] == email and "已批准" in m.get_content()])
    assert "3460.00 元" in mail.get_content() and mail["Subject"]
    deliveries = wait_for("both deliveries sent", lambda: [n["deliveries"] for n in member.get(
        "notifications", "/api/v1/me/notifications") if n["template"] == "claim_approved" and {
        d["channel"]: d["status"].replace("delivered", "sent") if d["channel"] == "sms" else d["status"]
        for d in n["deliveries"]} == {"in_app": "delivered", "sms": "sent", "email": "sent"}])  # sms: or its receipt
    assert deliveries
    wait_for("claims to learn of the instruction", lambda: agent.get(
        "claims", f"/api/v1/claims/{claim['claim_id']}")["payment"])
    assert stack.pg is not None
    carried = stack.pg.sql("payments", "SELECT envelope->>'correlation_id' FROM outbox "
                                       f"WHERE envelope->'payload'->>'claim_id' = '{claim['claim_id']}'")
    assert carried == correlation


def test_the_relay_publishing_every_event_again_changes_nothing(stack: Stack, world: World) -> None:
    agent = world.login("agent")
    claim = agent.post("claims", "/api/v1/claims", json=claim_body(world.member_ids[1], "2000.00"))
    approve_all_levels(world, claim["claim_id"])
    wait_for("the instruction", lambda: instructions(world, claim["claim_id"]))
    assert stack.pg is not None
    total = int(stack.pg.sql("claims", "SELECT count(*) FROM outbox"))
    before = metric(stack, "payments", "events_duplicates_skipped_total")
    # As if the relay had crashed after every ack and before marking: it publishes every event again.
    stack.pg.sql("claims", "UPDATE outbox SET published_at = NULL")
    wait_for("the relay to publish again", lambda: stack.pg.sql(  # type: ignore[union-attr]
        "claims", "SELECT count(*) FROM outbox WHERE published_at IS NULL") == "0")
    approvals = int(stack.pg.sql("claims", "SELECT count(*) FROM outbox WHERE type = 'claim.approved'"))
    wait_for("payments to skip the redelivered approvals",
             lambda: metric(stack, "payments", "events_duplicates_skipped_total") >= before + approvals, 60)
    assert total == int(stack.pg.sql("claims", "SELECT count(*) FROM outbox"))
    assert len(instructions(world, claim["claim_id"])) == 1
    assert stack.pg.sql("payments", "SELECT count(*) FROM payment_instructions GROUP BY claim_id "
                                    "HAVING count(*) > 1") == ""
    assert stack.pg.sql("notifications", "SELECT count(*) FROM notifications n GROUP BY member_id, template, "
                                         "text HAVING count(*) > 1 AND min(template) = 'claim_approved'") == ""


def test_a_consumer_killed_after_its_commit_and_before_its_offset_commit_applies_nothing_twice(
        stack: Stack, world: World) -> None:
    # Restart payments with a fault point: it dies by SIGKILL right after committing claim.approved's effects
    # and before committing the Kafka offset.
    assert stack.kill_service("payments", signal.SIGTERM) is not None
    stack.start_service("payments", {"PAYMENTS_FAULT_POINT": "after_db_commit:claim.approved"})
    stack.wait_ready(["payments"])
    agent = world.login("agent")
    claim = agent.post("claims", "/api/v1/claims", json=claim_body(world.member_ids[2], "5000.00"))
    approve_all_levels(world, claim["claim_id"])
    deadline = time.monotonic() + 60
    while stack.procs["payments"].poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert stack.procs["payments"].returncode == -signal.SIGKILL
    assert stack.pg is not None
    # Its database commit survived the kill: the instruction and the inbox row are there.
    assert stack.pg.sql("payments", f"SELECT count(*) FROM payment_instructions WHERE claim_id = "
                                    f"'{claim['claim_id']}'") == "1"
    stack.start_service("payments")
    stack.wait_ready(["payments"])
    # The uncommitted offset makes Kafka deliver claim.approved again; the inbox skips it.
    wait_for("the redelivery to be skipped",
             lambda: metric(stack, "payments", "events_duplicates_skipped_total") >= 1, 60)
    found = instructions(world, claim["claim_id"])
    assert len(found) == 1 and found[0]["amount"] == "1260.00"  # F(5000) = 0.30 * 4200
    assert stack.pg.sql("payments", "SELECT count(*) FROM outbox WHERE type = 'payment.instruction_created' "
                                    f"AND envelope->'payload'->>'claim_id' = '{claim['claim_id']}'") == "1"


def test_finance_pays_the_instruction_and_the_claim_and_member_learn_it(stack: Stack, world: World) -> None:
    agent = world.login("agent")
    claim = agent.post("claims", "/api/v1/claims", json=claim_body(world.member_ids[3], "3000.00"))
    approve_all_levels(world, claim["claim_id"])
    wait_for("the instruction", lambda: instructions(world, claim["claim_id"]))
    finance, second = world.login("finance"), world.login("finance2")
    batch = finance.post("payments", "/api/v1/payment-batches", json={"format": "pain001"})
    assert batch["status"] == "awaiting_release" and batch["count"] >= 1
    with pytest.raises(ApiError) as same_person:
        finance.post("payments", f"/api/v1/payment-batches/{batch['batch_id']}/release")
    assert same_person.value.status == 403
    second.post("payments", f"/api/v1/payment-batches/{batch['batch_id']}/release")
    r = httpx.get(f"{stack.url('payments')}/api/v1/payment-batches/{batch['batch_id']}/file",
                  headers={"Authorization": f"Bearer {finance.token}"}, timeout=30)
    assert r.status_code == 200 and b"pain.001.001.09" in r.content
    line = instructions(world, claim["claim_id"])[0]
    result = finance.post("payments", f"/api/v1/payment-batches/{batch['batch_id']}/results",
                          json=[{"instruction_id": line["instruction_id"], "status": "paid", "reason": ""}])
    assert result["paid"] == 1
    wait_for("claims to mark the claim paid",
             lambda: agent.get("claims", f"/api/v1/claims/{claim['claim_id']}")["status"] == "paid")
    staff = world.login("agency")
    wait_for("the member's paid message", lambda: [n for n in staff.get(
        "notifications", "/api/v1/notifications", params={"member_id": world.member_ids[3]})
        if n["template"] == "payment_paid"])
    ledger = finance.get("payments", f"/api/v1/ledger/periods/{world.period}")
    assert ledger["postings_sum"] == "0.00"
    assert ledger["fees_received"] == "900.00"
