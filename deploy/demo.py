"""``make demo``: one claim from a unit's roster to a bank-transfer instruction and a message to the member,
through all four services and Kafka, as the people who do it would, with the time each step took.

Needs ``make run`` going in another terminal (it loads the demo roster this uses).
"""

from __future__ import annotations

import random
import time
import uuid
from datetime import date, timedelta

from deploy.client import Huzhu, wait_for
from deploy.demo_data import DEMO_PASSWORD, demo_members
from deploy.localstack import SERVICES

REVIEWER_FOR_LEVEL = {"agency_point": "agency", "office": "office", "centre": "centre"}


def main() -> None:
    api = Huzhu({name: f"http://127.0.0.1:{port}" for name, port in SERVICES.items()})
    started = time.monotonic()
    marks: list[tuple[str, float]] = []

    def mark(step: str) -> None:
        marks.append((step, time.monotonic() - started))
        print(f"[{marks[-1][1]:6.2f} s] {step}")

    agent = api.login("agent1", DEMO_PASSWORD)
    person = random.choice(demo_members()[:8])
    covered = agent.get("claims", "/api/v1/coverages", params={"certno": person["certno"]})
    member_id = covered[0]["member_id"]
    mark(f"unit agent agent1 found {person['name']} covered in period {covered[0]['period']}")
    discharge = date.today() - timedelta(days=3)
    claim = agent.post("claims", "/api/v1/claims", json={
        "member_id": member_id, "plan": "inpatient",
        "admission_date": (discharge - timedelta(days=9)).isoformat(), "discharge_date": discharge.isoformat(),
        "diagnosis": {"icd10": "K80.1", "name": "胆囊结石伴胆囊炎"},
        "settlement": {"setl_id": f"DEMO-{uuid.uuid4().hex[:12]}", "med_type": "21", "medfee_sumamt": "38000.00",
                       "fund_pay_sumamt": "26000.00", "psn_part_amt": "12000.00", "fulamt_ownpay_amt": "1000.00"},
    })
    detail = agent.get("claims", f"/api/v1/claims/{claim['claim_id']}")
    mark(f"claim {claim['claim_id']} submitted: {claim['status']}, aid {claim['aid_amount']} CNY, "
         f"final approval by {detail['approval']['final_level']}, due {detail['approval']['due_date']}")
    if detail["status"] != "in_review":
        raise SystemExit(f"the claim did not go to review: {detail['rejection']}")
    while detail["status"] == "in_review":
        level = detail["approval"]["current_level"]
        reviewer = api.login(REVIEWER_FOR_LEVEL[level], DEMO_PASSWORD)
        detail = reviewer.post("claims", f"/api/v1/claims/{claim['claim_id']}/decisions",
                               json={"decision": "approve", "reason": "材料齐全，金额核对无误",
                                     # 第十二条: the reviewer found none of the checklist's exclusions
                                     "exclusions_checklist": {
                                         i["code"]: False for i in detail.get("exclusions_checklist", [])}})
        mark(f"{level} approved -> {detail['status']}")
    finance = api.login("finance1", DEMO_PASSWORD)
    instruction = wait_for("the payment instruction", lambda: finance.get(
        "payments", "/api/v1/payment-instructions", params={"claim_id": claim["claim_id"]}))[0]
    mark(f"payments created instruction {instruction['instruction_id']}: {instruction['amount']} CNY to "
         f"{instruction['payee_name']} ({instruction['bank_name']}), status {instruction['status']}")
    staff = api.login("agency", DEMO_PASSWORD)
    feed = wait_for("the member's message", lambda: [n for n in staff.get(
        "notifications", "/api/v1/notifications", params={"member_id": member_id})
        if n["template"] == "claim_approved"])
    mark(f"notifications recorded for the member: {feed[0]['text']}")
    print(f"\nroster -> payment instruction end to end: {marks[-2][1]:.2f} s; with the member's message: "
          f"{marks[-1][1]:.2f} s")


if __name__ == "__main__":
    main()
