"""Claims (docs/API.md "Claims (8002)"): aid, tiered approval, refusals, settlements and events from elsewhere.

Claims learns periods and coverages only from enrollment's events, so every test feeds it a fresh period
(yunnan-18 redated around today) and a freshly covered member in its own organisation tree.
"""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from deploy.people import certno as make_certno
from deploy.people import luhn_account
from services.claims.domain.workdays import add_working_days
from services.claims.models import MESSAGING
from shared.events import (
    CoverageEnded,
    MemberCovered,
    PaymentInstructionCreated,
    PaymentSettled,
    PeriodPublished,
)
from shared.rulebook import load_rulebook
from tests.conftest import RULEBOOKS, ServiceClient, apply_event, token_for

TODAY = date.today()


def short() -> str:
    return uuid.uuid4().hex[:8]


@dataclass
class Branch:
    """centre > office > agency point > unit, with codes unique to one test."""

    centre: str = field(default_factory=lambda: f"C{short()}")
    office: str = field(default_factory=lambda: f"O{short()}")
    agency: str = field(default_factory=lambda: f"A{short()}")
    unit: str = field(default_factory=lambda: f"U{short()}")

    @property
    def path(self) -> list[str]:
        return [self.centre, self.office, self.agency, self.unit]

    def sibling(self) -> Branch:
        """Another agency point and unit under the same centre and office."""
        return Branch(centre=self.centre, office=self.office)

    def unit_agent(self, user_id: str | None = None) -> dict[str, str]:
        return token_for("unit_agent", self.unit, tuple(self.path), "unit", user_id=user_id)

    def agency_reviewer(self, user_id: str | None = None) -> dict[str, str]:
        return token_for("agency_reviewer", self.agency, tuple(self.path[:3]), "agency_point", user_id=user_id)

    def office_reviewer(self, user_id: str | None = None) -> dict[str, str]:
        return token_for("office_reviewer", self.office, tuple(self.path[:2]), "office", user_id=user_id)

    def centre_reviewer(self, user_id: str | None = None) -> dict[str, str]:
        return token_for("centre_reviewer", self.centre, tuple(self.path[:1]), "centre", user_id=user_id)


@dataclass
class Member:
    member_id: str
    certno: str
    period: str
    branch: Branch

    def token(self) -> dict[str, str]:
        return token_for("member", member_id=self.member_id)


async def claims(rolled_back: ServiceClient) -> tuple[FastAPI, httpx.AsyncClient]:
    return await rolled_back("claims")


def period_document(rulebook_file: str, code: str, *, cover_from: date | None = None, cover_to: date | None = None,
                    claims_from: date | None = None, claims_to: date | None = None,
                    enrolment: tuple[date, date] | None = None) -> dict[str, Any]:
    """One of the project's rulebooks under the code ``code``, with its windows moved around today: enrolment a
    month before the cover, cover from 180 days ago for a year, claims from ten days into the cover for a year
    after today (unless the arguments say otherwise)."""
    doc = load_rulebook((RULEBOOKS / rulebook_file).read_text(encoding="utf-8")).to_document()
    doc["code"] = code
    cover_from = cover_from or TODAY - timedelta(days=180)
    enrol_from, enrol_to = enrolment or (cover_from - timedelta(days=40), cover_from - timedelta(days=10))
    doc["windows"] = {
        "enrolment": {"from": enrol_from.isoformat(), "to": enrol_to.isoformat()},
        "coverage": {"from": cover_from.isoformat(), "to": (cover_to or TODAY + timedelta(days=180)).isoformat()},
        "claims": {"from": (claims_from or cover_from + timedelta(days=10)).isoformat(),
                   "to": (claims_to or TODAY + timedelta(days=365)).isoformat()},
    }
    return doc


async def publish_rulebook(app: FastAPI, rulebook_file: str, prefix: str, **windows: Any) -> str:
    """Publish ``period_document`` under a fresh code starting with ``prefix``; answers the code."""
    code = f"{prefix}-{short()}"
    assert await apply_event(app, PeriodPublished(period=code, rulebook=period_document(rulebook_file, code,
                                                                                        **windows)))
    return code


async def publish_period(app: FastAPI, claims_to: date | None = None) -> str:
    """yunnan-18 under a fresh code, covering today, its claim window open (unless `claims_to` says otherwise)."""
    return await publish_rulebook(app, "yunnan-18.yaml", "yn18", claims_to=claims_to)


async def cover(app: FastAPI, period: str, branch: Branch | None = None) -> Member:
    branch = branch or Branch()
    rng = random.Random(uuid.uuid4().int)
    member = Member(member_id=f"M{short()}", certno=make_certno(rng), period=period, branch=branch)
    assert await apply_event(app, MemberCovered(
        member_id=member.member_id, period=period, plans=["inpatient"],
        coverage_from=TODAY - timedelta(days=180), coverage_to=TODAY + timedelta(days=180),
        name="王芳", certno=member.certno, sex="female", member_type="in_service", unit=branch.unit,
        unit_path=branch.path, bank_account=luhn_account(rng), bank_name="中国工商银行昆明五华支行",
        phone="13812345678", renewing=True, fee=Decimal("120.00")))
    return member


async def setup(rolled_back: ServiceClient) -> tuple[FastAPI, httpx.AsyncClient, Member]:
    app, client = await claims(rolled_back)
    return app, client, await cover(app, await publish_period(app))


def claim_body(member: Member | None = None, *, base: str = "11000.00", own_pay: str = "1000.00",
               setl_id: str | None = None, med_type: str = "21", discharge: date | None = None,
               by: str = "member_id", certno: str | None = None) -> dict[str, Any]:
    """A claim whose base is `base` (psn_part_amt = base + own_pay, fulamt_ownpay_amt = own_pay)."""
    discharge = discharge or TODAY - timedelta(days=10)
    psn_part = Decimal(base) + Decimal(own_pay)
    body: dict[str, Any] = {
        "plan": "inpatient",
        "admission_date": (discharge - timedelta(days=7)).isoformat(),
        "discharge_date": discharge.isoformat(),
        "diagnosis": {"icd10": "I21.9", "name": "急性心肌梗死"},
        "settlement": {
            "setl_id": setl_id or f"S{uuid.uuid4().hex}", "med_type": med_type,
            "medfee_sumamt": f"{psn_part * 3:.2f}", "fund_pay_sumamt": f"{psn_part * 2:.2f}",
            "psn_part_amt": f"{psn_part:.2f}", "fulamt_ownpay_amt": own_pay,
        },
    }
    if certno is not None:
        body["certno"] = certno
    elif member is not None:
        body["member_id" if by == "member_id" else "certno"] = member.member_id if by == "member_id" \
            else member.certno
    return body


async def submit(client: httpx.AsyncClient, member: Member, expect: int = 201, **kwargs: Any) -> dict[str, Any]:
    r = await client.post("/api/v1/claims", json=claim_body(member, **kwargs),
                          headers=member.branch.unit_agent())
    assert r.status_code == expect, r.text
    return r.json()


async def get_claim(client: httpx.AsyncClient, claim_id: str, headers: dict[str, str]) -> dict[str, Any]:
    r = await client.get(f"/api/v1/claims/{claim_id}", headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


async def decide(client: httpx.AsyncClient, claim_id: str, headers: dict[str, str], decision: str = "approve",
                 **extra: Any) -> httpx.Response:
    if decision == "approve" and "exclusions_checklist" not in extra:
        # 第十二条: the reviewer answers the checklist the claim shows, here "does not apply" to every item
        # (tests/service/test_c16_exclusions.py tests the checklist itself).
        shown = await client.get(f"/api/v1/claims/{claim_id}", headers=headers)
        if shown.status_code == 200:
            extra["exclusions_checklist"] = {i["code"]: False for i in shown.json()["exclusions_checklist"]}
    return await client.post(f"/api/v1/claims/{claim_id}/decisions", json={"decision": decision, **extra},
                             headers=headers)


async def outbox_events(app: FastAPI, claim_id: str, event_type: str) -> list[dict[str, Any]]:
    outbox = MESSAGING.outbox
    async with app.state.db.transaction() as session:
        rows = (await session.execute(select(outbox.c.envelope).where(
            outbox.c.key == claim_id, outbox.c.type == event_type).order_by(outbox.c.seq))).scalars().all()
    return list(rows)


# --- the reference claim, through two levels -------------------------------------------------------------
async def test_a_claim_of_base_11000_is_aided_3460_and_approved_by_the_agency_point_then_the_office(
        rolled_back: ServiceClient) -> None:
    app, client, member = await setup(rolled_back)
    branch = member.branch
    r = await client.post("/api/v1/claims", json=claim_body(member, base="11000.00", own_pay="1000.00"),
                          headers=branch.unit_agent())
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["status"] == "in_review" and created["aid_amount"] == "3460.00"
    claim_id = created["claim_id"]

    claim = await get_claim(client, claim_id, branch.agency_reviewer())
    assert claim["base"] == "11000.00" and claim["period"] == member.period
    assert claim["approval"]["final_level"] == "office"
    assert claim["approval"]["current_level"] == "agency_point"
    assert claim["approval"]["due_date"] == add_working_days(TODAY, 5).due.isoformat()

    reviewer = str(uuid.uuid4())
    r = await decide(client, claim_id, branch.agency_reviewer(user_id=reviewer))
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "in_review" and r.json()["approval"]["current_level"] == "office"
    assert r.json()["approval"]["due_date"] == add_working_days(TODAY, 5).due.isoformat()

    r = await decide(client, claim_id, branch.office_reviewer(user_id=reviewer))
    assert r.status_code == 403 and r.json()["code"] == "same_person_twice"

    r = await decide(client, claim_id, branch.office_reviewer())
    assert r.status_code == 200, r.text
    approved = r.json()
    assert approved["status"] == "approved" and approved["aid_amount"] == "3460.00"
    assert approved["approval"]["current_level"] is None
    assert [(s["level"], s["decision"]) for s in approved["approval"]["steps"]] == [
        ("unit", "submit"), ("agency_point", "approve"), ("office", "approve")]

    events = await outbox_events(app, claim_id, "claim.approved")
    assert len(events) == 1
    assert events[0]["payload"]["aid_amount"] == "3460.00"
    assert events[0]["payload"]["member_id"] == member.member_id


async def test_a_claim_by_certno_finds_the_member_covered_on_the_discharge_date(
        rolled_back: ServiceClient) -> None:
    _, client, member = await setup(rolled_back)
    created = await submit(client, member, by="certno", base="5000.00")
    assert created["status"] == "in_review" and created["aid_amount"] == "1260.00"
    claim = await get_claim(client, created["claim_id"], member.token())
    assert claim["member_id"] == member.member_id


# --- routing by amount ------------------------------------------------------------------------------------
async def test_aid_up_to_3000_is_final_at_the_agency_point(rolled_back: ServiceClient) -> None:
    _, client, member = await setup(rolled_back)
    created = await submit(client, member, base="10000.00")  # F(10000) = 2760.00
    assert created["aid_amount"] == "2760.00"
    claim = await get_claim(client, created["claim_id"], member.token())
    assert claim["approval"]["final_level"] == "agency_point"
    r = await decide(client, created["claim_id"], member.branch.agency_reviewer())
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "approved" and r.json()["approval"]["current_level"] is None


async def test_aid_over_10000_needs_the_agency_point_the_office_and_the_centre(
        rolled_back: ServiceClient) -> None:
    _, client, member = await setup(rolled_back)
    created = await submit(client, member, base="30000.00")  # 2760 + 0.70 * 20000 = 16760.00
    assert created["aid_amount"] == "16760.00"
    claim_id, branch = created["claim_id"], member.branch
    levels = []
    for reviewer in (branch.agency_reviewer(), branch.office_reviewer(), branch.centre_reviewer()):
        claim = await get_claim(client, claim_id, reviewer)
        assert claim["status"] == "in_review" and claim["approval"]["final_level"] == "centre"
        levels.append(claim["approval"]["current_level"])
        r = await decide(client, claim_id, reviewer)
        assert r.status_code == 200, r.text
    assert levels == ["agency_point", "office", "centre"]
    assert (await get_claim(client, claim_id, member.token()))["status"] == "approved"


# --- accumulation and zero aid ----------------------------------------------------------------------------
async def test_two_stays_in_a_period_accumulate_their_bases(rolled_back: ServiceClient) -> None:
    _, client, member = await setup(rolled_back)
    first = await submit(client, member, base="1000.00")
    assert first["aid_amount"] == "100.00"  # F(1000) = 60 raised to the 100 minimum
    second = await submit(client, member, base="1000.00")
    assert second["aid_amount"] == "260.00"  # F(2000) - F(1000) = 360 - 100
    claim = await get_claim(client, second["claim_id"], member.token())
    assert claim["cumulative_base"] == "2000.00"


async def test_a_claim_with_aid_0_is_reviewed_and_approved_with_0_00(rolled_back: ServiceClient) -> None:
    _, client, member = await setup(rolled_back)
    created = await submit(client, member, base="500.00")
    assert created["status"] == "in_review" and created["aid_amount"] == "0.00"
    r = await decide(client, created["claim_id"], member.branch.agency_reviewer())
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "approved" and r.json()["aid_amount"] == "0.00"
    assert r.json()["payment"] is None


# --- who may do what --------------------------------------------------------------------------------------
async def test_a_reviewer_of_another_branch_may_neither_read_nor_decide(rolled_back: ServiceClient) -> None:
    _, client, member = await setup(rolled_back)
    created = await submit(client, member, base="5000.00")
    stranger = member.branch.sibling().agency_reviewer()
    r = await decide(client, created["claim_id"], stranger)
    assert r.status_code == 403 and r.json()["code"] == "outside_subtree"
    assert (await client.get(f"/api/v1/claims/{created['claim_id']}", headers=stranger)).status_code == 403
    assert (await get_claim(client, created["claim_id"], member.token()))["status"] == "in_review"


async def test_a_reviewer_at_the_wrong_level_is_refused(rolled_back: ServiceClient) -> None:
    _, client, member = await setup(rolled_back)
    created = await submit(client, member, base="5000.00")
    r = await decide(client, created["claim_id"], member.branch.office_reviewer())
    assert r.status_code == 403 and r.json()["code"] == "not_your_level"
    # An agency reviewer whose token says another level is refused too.
    odd = token_for("agency_reviewer", member.branch.agency, tuple(member.branch.path[:3]), "office")
    assert (await decide(client, created["claim_id"], odd)).status_code == 403


async def test_a_unit_agent_of_another_unit_may_not_submit(rolled_back: ServiceClient) -> None:
    _, client, member = await setup(rolled_back)
    r = await client.post("/api/v1/claims", json=claim_body(member),
                          headers=member.branch.sibling().unit_agent())
    assert r.status_code == 403 and r.json()["code"] == "outside_subtree"


async def test_a_member_may_submit_for_themselves_only(rolled_back: ServiceClient) -> None:
    app, client, member = await setup(rolled_back)
    other = await cover(app, member.period, member.branch)
    r = await client.post("/api/v1/claims", json=claim_body(other), headers=member.token())
    assert r.status_code == 403 and r.json()["code"] == "not_yourself"
    r = await client.post("/api/v1/claims", json=claim_body(member, base="5000.00"), headers=member.token())
    assert r.status_code == 201 and r.json()["status"] == "in_review"


async def test_the_review_queue_lists_the_callers_level_in_its_branch_oldest_first(
        rolled_back: ServiceClient) -> None:
    app, client, member = await setup(rolled_back)
    branch = member.branch
    passed_up = await submit(client, member, base="11000.00")  # goes on to the office
    assert (await decide(client, passed_up["claim_id"], branch.agency_reviewer())).status_code == 200
    first = await submit(client, member, base="1000.00")
    second = await submit(client, member, base="1000.00")
    elsewhere = await cover(app, member.period, branch.sibling())
    foreign = await submit(client, elsewhere, base="1000.00")

    r = await client.get("/api/v1/review-queue", headers=branch.agency_reviewer())
    assert r.status_code == 200, r.text
    assert [c["claim_id"] for c in r.json()] == [first["claim_id"], second["claim_id"]]

    r = await client.get("/api/v1/review-queue", headers=branch.office_reviewer())
    assert [c["claim_id"] for c in r.json()] == [passed_up["claim_id"]]

    r = await client.get("/api/v1/review-queue", headers=elsewhere.branch.agency_reviewer())
    assert [c["claim_id"] for c in r.json()] == [foreign["claim_id"]]

    assert (await client.get("/api/v1/review-queue", headers=branch.unit_agent())).status_code == 403


# --- reject, return, resubmit -----------------------------------------------------------------------------
async def test_rejecting_needs_a_reason(rolled_back: ServiceClient) -> None:
    _, client, member = await setup(rolled_back)
    created = await submit(client, member, base="5000.00")
    r = await decide(client, created["claim_id"], member.branch.agency_reviewer(), "reject")
    assert r.status_code == 422 and r.json()["code"] == "reason_required"
    r = await decide(client, created["claim_id"], member.branch.agency_reviewer(), "reject", reason="  ")
    assert r.status_code == 422 and r.json()["code"] == "reason_required"
    assert (await get_claim(client, created["claim_id"], member.token()))["status"] == "in_review"


async def test_a_rejected_claim_carries_the_rejection_code(rolled_back: ServiceClient) -> None:
    app, client, member = await setup(rolled_back)
    created = await submit(client, member, base="5000.00")
    r = await decide(client, created["claim_id"], member.branch.agency_reviewer(), "reject",
                     reason="工伤住院，基本医保不予支付", reason_code="not_paid_by_basic_insurance")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "rejected"
    assert r.json()["rejection"]["code"] == "not_paid_by_basic_insurance"
    assert r.json()["approval"]["current_level"] is None
    assert len(await outbox_events(app, created["claim_id"], "claim.rejected")) == 1
    r = await decide(client, created["claim_id"], member.branch.agency_reviewer())
    assert r.status_code == 403


async def test_a_returned_claim_resubmitted_by_the_unit_agent_goes_back_to_the_level_that_returned_it(
        rolled_back: ServiceClient) -> None:
    _, client, member = await setup(rolled_back)
    branch = member.branch
    created = await submit(client, member, base="11000.00")
    claim_id = created["claim_id"]
    assert (await decide(client, claim_id, branch.agency_reviewer())).status_code == 200
    r = await decide(client, claim_id, branch.office_reviewer(), "return")
    assert r.status_code == 422 and r.json()["code"] == "reason_required"
    r = await decide(client, claim_id, branch.office_reviewer(), "return", reason="缺少出院证")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "returned"

    r = await client.post(f"/api/v1/claims/{claim_id}/resubmission", json={"note": "已补出院证"},
                          headers=branch.unit_agent())
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "in_review"
    assert r.json()["approval"]["current_level"] == "office"
    assert r.json()["approval"]["due_date"] == add_working_days(TODAY, 5).due.isoformat()
    r = await client.post(f"/api/v1/claims/{claim_id}/resubmission", json={"note": "again"},
                          headers=branch.unit_agent())
    assert r.status_code == 409 and r.json()["code"] == "not_returned"


# --- rule-based refusals ----------------------------------------------------------------------------------
async def assert_refused(response: httpx.Response, code: str) -> None:
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "rejected" and body["rejection"]["code"] == code, body


async def test_a_discharge_outside_the_coverage_is_refused_not_covered(rolled_back: ServiceClient) -> None:
    app, client, member = await setup(rolled_back)
    body = claim_body(member, discharge=TODAY - timedelta(days=200))  # before the coverage began
    r = await client.post("/api/v1/claims", json=body, headers=member.token())
    await assert_refused(r, "not_covered")
    claim = await get_claim(client, r.json()["claim_id"], member.token())
    assert claim["approval"]["current_level"] is None and claim["aid_amount"] is None
    assert len(await outbox_events(app, r.json()["claim_id"], "claim.rejected")) == 1


async def test_an_outpatient_settlement_is_refused_as_excluded_outpatient(rolled_back: ServiceClient) -> None:
    _, client, member = await setup(rolled_back)
    r = await client.post("/api/v1/claims", json=claim_body(member, med_type="11"),
                          headers=member.branch.unit_agent())
    await assert_refused(r, "excluded_outpatient")  # 第十二条第四款


async def test_a_settlement_claimed_twice_is_refused_duplicate_settlement(rolled_back: ServiceClient) -> None:
    _, client, member = await setup(rolled_back)
    setl_id = f"S{uuid.uuid4().hex}"
    first = await submit(client, member, setl_id=setl_id, base="5000.00")
    assert first["status"] == "in_review"
    r = await client.post("/api/v1/claims", json=claim_body(member, setl_id=setl_id, base="5000.00"),
                          headers=member.branch.unit_agent())
    await assert_refused(r, "duplicate_settlement")
    assert (await get_claim(client, first["claim_id"], member.token()))["status"] == "in_review"


async def test_a_stay_after_the_coverage_ended_is_refused_coverage_ended(rolled_back: ServiceClient) -> None:
    app, client, member = await setup(rolled_back)
    assert await apply_event(app, CoverageEnded(member_id=member.member_id, period=member.period,
                                                ended_on=TODAY - timedelta(days=30), reason="退出基本医保"))
    r = await client.post("/api/v1/claims", json=claim_body(member, discharge=TODAY - timedelta(days=10)),
                          headers=member.branch.unit_agent())
    await assert_refused(r, "coverage_ended")


async def test_a_claim_after_the_claim_window_is_refused_claim_window_closed(
        rolled_back: ServiceClient) -> None:
    app, client = await claims(rolled_back)
    period = await publish_period(app, claims_to=TODAY - timedelta(days=1))
    member = await cover(app, period)
    r = await client.post("/api/v1/claims", json=claim_body(member), headers=member.branch.unit_agent())
    await assert_refused(r, "claim_window_closed")


async def test_an_unknown_certno_is_404_member_not_covered(rolled_back: ServiceClient) -> None:
    _, client, member = await setup(rolled_back)
    unknown = make_certno(random.Random(uuid.uuid4().int), region="110101")
    r = await client.post("/api/v1/claims", json=claim_body(certno=unknown), headers=member.branch.unit_agent())
    assert r.status_code == 404 and r.json()["code"] == "member_not_covered"


# --- settlements from bureaus -----------------------------------------------------------------------------
def bureau(branch: Branch) -> dict[str, str]:
    """A bureau account at the member's centre: its feeds are kept for the members of that branch."""
    return token_for("bureau", branch.centre, (branch.centre,), "centre")


def settlement(setl_id: str | None, member: Member | None = None, **extra: Any) -> dict[str, Any]:
    record: dict[str, Any] = {"med_type": "21", "insutype": "310", "setl_time": "2026-03-05 14:20:00",
                              "medfee_sumamt": "30000.00", "psn_part_amt": "12000.00",
                              "fulamt_ownpay_amt": "1000.00", **extra}
    if member is not None:
        record["certno"] = member.certno
    if setl_id is not None:
        record["setl_id"] = setl_id
    return record


async def test_settlements_arrive_as_a_json_array_or_ndjson_and_are_counted(rolled_back: ServiceClient) -> None:
    _, client, member = await setup(rolled_back)
    BUREAU = bureau(member.branch)
    a, b, c = (f"S{uuid.uuid4().hex}" for _ in range(3))
    r = await client.post("/api/v1/settlements", json=[settlement(a, member), settlement(b, member),
                                                       settlement(None, member)],
                          headers=BUREAU)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["received"], body["accepted"], body["duplicates"]) == (3, 2, 0)
    assert [x["index"] for x in body["rejected"]] == [2]

    ndjson = "\n".join(json.dumps(x) for x in (settlement(a, member), settlement(None, member),
                                               settlement(c, member))) + "\n"
    r = await client.post("/api/v1/settlements", content=ndjson.encode(),
                          headers={**BUREAU, "Content-Type": "application/x-ndjson"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["received"], body["accepted"], body["duplicates"]) == (3, 1, 1)
    assert [x["index"] for x in body["rejected"]] == [1]

    r = await client.post("/api/v1/settlements", json=[settlement(c)],
                          headers=token_for("unit_agent", "U1", ("C1", "O1", "A1", "U1"), "unit"))
    assert r.status_code == 403


async def test_a_claim_on_a_reversed_settlement_is_refused_settlement_reversed(
        rolled_back: ServiceClient) -> None:
    _, client, member = await setup(rolled_back)
    setl_id = f"S{uuid.uuid4().hex}"
    r = await client.post("/api/v1/settlements", json=[settlement(setl_id, member, refd_setl_flag="1")],
                          headers=bureau(member.branch))
    assert r.json()["accepted"] == 1
    r = await client.post("/api/v1/claims", json=claim_body(member, setl_id=setl_id),
                          headers=member.branch.unit_agent())
    await assert_refused(r, "settlement_reversed")


# --- events from payments ---------------------------------------------------------------------------------
async def test_payment_events_move_the_claim_to_pending_then_paid(rolled_back: ServiceClient) -> None:
    app, client, member = await setup(rolled_back)
    created = await submit(client, member, base="5000.00")
    claim_id = created["claim_id"]
    assert (await decide(client, claim_id, member.branch.agency_reviewer())).status_code == 200
    instruction_id = str(uuid.uuid4())
    assert await apply_event(app, PaymentInstructionCreated(
        instruction_id=instruction_id, claim_id=claim_id, member_id=member.member_id, attempt=1,
        amount=Decimal("1260.00")))
    claim = await get_claim(client, claim_id, member.token())
    assert claim["status"] == "approved"
    assert claim["payment"] == {"instruction_id": instruction_id, "status": "pending"}

    assert await apply_event(app, PaymentSettled(instruction_id=instruction_id, claim_id=claim_id,
                                                 member_id=member.member_id, amount=Decimal("1260.00")))
    claim = await get_claim(client, claim_id, member.token())
    assert claim["status"] == "paid"
    assert claim["payment"] == {"instruction_id": instruction_id, "status": "paid"}


# --- revocation -------------------------------------------------------------------------------------------
async def test_the_centre_revokes_a_fraudulent_claim_and_an_office_reviewer_may_not(
        rolled_back: ServiceClient) -> None:
    app, client, member = await setup(rolled_back)
    created = await submit(client, member, base="5000.00")
    claim_id = created["claim_id"]
    assert (await decide(client, claim_id, member.branch.agency_reviewer())).status_code == 200

    r = await client.post(f"/api/v1/claims/{claim_id}/revocation", json={"reason": "伪造结算单"},
                          headers=member.branch.office_reviewer())
    assert r.status_code == 403
    assert (await get_claim(client, claim_id, member.token()))["status"] == "approved"

    r = await client.post(f"/api/v1/claims/{claim_id}/revocation", json={"reason": "伪造结算单"},
                          headers=member.branch.centre_reviewer())
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "revoked"
    events = await outbox_events(app, claim_id, "claim.revoked")
    assert len(events) == 1 and events[0]["payload"]["reason"] == "伪造结算单"

    r = await client.post(f"/api/v1/claims/{claim_id}/revocation", json={"reason": "again"},
                          headers=member.branch.centre_reviewer())
    assert r.status_code == 409 and r.json()["code"] == "not_revocable"
