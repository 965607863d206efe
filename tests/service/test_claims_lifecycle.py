"""Claims after submission (issue 4): changing facts and adjustments, reversals from the bureau feed, fraud,
second aid, the working-day calendar, overdue notices, documents and the review queue's missing documents."""

from __future__ import annotations

import io
import uuid
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from PIL import Image
from pypdf import PdfWriter
from sqlalchemy import update

from services.claims.calendar import load_calendar
from services.claims.domain.workdays import add_working_days
from services.claims.models import Claim
from services.claims.overdue import sweep_overdue
from shared.events import MemberCovered
from tests.conftest import ServiceClient, apply_event, token_for
from tests.service.test_claims import (
    TODAY,
    Branch,
    Member,
    bureau,
    claim_body,
    cover,
    decide,
    get_claim,
    outbox_events,
    publish_rulebook,
    setup,
    short,
    submit,
)

ADMIN = token_for("admin")


async def submit_stay(client: httpx.AsyncClient, member: Member, base: str, mdtrt_id: str | None = None,
                      expect: int = 201) -> dict[str, Any]:
    body = claim_body(member, base=base)
    if mdtrt_id:
        body["settlement"]["mdtrt_id"] = mdtrt_id
    r = await client.post("/api/v1/claims", json=body, headers=member.branch.unit_agent())
    assert r.status_code == expect, r.text
    return r.json()


async def approve_through(client: httpx.AsyncClient, member: Member, claim_id: str) -> dict[str, Any]:
    """Approve at every level until final, each level by its own reviewer."""
    reviewers = {"agency_point": member.branch.agency_reviewer, "office": member.branch.office_reviewer,
                 "centre": member.branch.centre_reviewer}
    claim = await get_claim(client, claim_id, member.token())
    while claim["status"] == "in_review":
        r = await decide(client, claim_id, reviewers[claim["approval"]["current_level"]]())
        assert r.status_code == 200, r.text
        claim = r.json()
    return claim


# --- several stays, changing facts --------------------------------------------------------------------------
async def test_an_earlier_stay_rejected_late_recovers_the_difference_from_the_approved_later_stay(
        rolled_back: ServiceClient) -> None:
    app, client, member = await setup(rolled_back)
    first = await submit_stay(client, member, "11000.00")  # F(11000) = 3460.00
    second = await submit_stay(client, member, "5000.00")  # F(16000) - F(11000) = 6960 - 3460 = 3500.00
    assert second["aid_amount"] == "3500.00"
    assert (await approve_through(client, member, second["claim_id"]))["status"] == "approved"

    r = await decide(client, first["claim_id"], member.branch.agency_reviewer(), "reject", reason="材料不实")
    assert r.status_code == 200 and r.json()["status"] == "rejected"

    later = await get_claim(client, second["claim_id"], member.token())
    # Alone, a base of 5000 is F(5000) = 0.30 * 4200 = 1260.00: the member owes 2240.00 back.
    assert later["aid_amount"] == "1260.00" and later["assessed_aid_amount"] == "3500.00"
    [adjustment] = later["adjustments"]
    assert (adjustment["amount"], adjustment["cause"], adjustment["announced"]) == ("-2240.00", "late_rejection",
                                                                                      True)
    assert adjustment["cause_claim_id"] == first["claim_id"] and adjustment["rulebook"] == member.period
    assert any(s["decision"] == "adjust" for s in later["approval"]["steps"])
    [event] = await outbox_events(app, second["claim_id"], "claim.adjusted")
    assert event["payload"]["amount"] == "-2240.00" and event["payload"]["aid_amount"] == "1260.00"


async def test_a_reversal_in_the_bureau_feed_after_approval_reverses_the_claim_and_reassesses_the_period(
        rolled_back: ServiceClient) -> None:
    app, client, member = await setup(rolled_back)
    mdtrt_id = f"V{short()}"
    first = await submit_stay(client, member, "5000.00", mdtrt_id=mdtrt_id)  # 1260.00
    second = await submit_stay(client, member, "2000.00")  # F(7000) - F(5000) = 1860 - 1260 = 600.00
    assert second["aid_amount"] == "600.00"
    await approve_through(client, member, first["claim_id"])
    await approve_through(client, member, second["claim_id"])

    reversal = {"setl_id": f"R{short()}", "mdtrt_id": mdtrt_id, "certno": member.certno, "med_type": "21",
                "medfee_sumamt": "-18000.00", "fund_pay_sumamt": "-12000.00", "psn_part_amt": "-6000.00"}
    r = await client.post("/api/v1/settlements", json=[reversal], headers=bureau(member.branch))
    assert r.status_code == 200, r.text
    assert r.json()["reversals"] == 1 and r.json()["claims_reversed"] == [first["claim_id"]]

    reversed_claim = await get_claim(client, first["claim_id"], member.token())
    assert reversed_claim["status"] == "rejected"
    assert reversed_claim["rejection"]["code"] == "settlement_reversed"
    assert [a["amount"] for a in reversed_claim["adjustments"]] == ["-1260.00"]
    later = await get_claim(client, second["claim_id"], member.token())
    assert later["aid_amount"] == "360.00"  # F(2000) = 0.30 * 1200 = 360.00 on its own
    assert [a["amount"] for a in later["adjustments"]] == ["-240.00"]
    assert len(await outbox_events(app, first["claim_id"], "claim.adjusted")) == 1
    assert len(await outbox_events(app, first["claim_id"], "claim.rejected")) == 1

    # The same reversal sent again changes nothing.
    r = await client.post("/api/v1/settlements", json=[reversal], headers=bureau(member.branch))
    assert r.json()["duplicates"] == 1 and r.json()["claims_reversed"] == []
    # A new claim on the reversed stay is refused.
    body = claim_body(member, base="5000.00")
    body["settlement"]["mdtrt_id"] = mdtrt_id
    r = await client.post("/api/v1/claims", json=body, headers=member.branch.unit_agent())
    assert r.json()["rejection"]["code"] == "settlement_reversed"


async def test_a_settlement_re_sent_with_its_reversal_flag_reverses_a_claim_in_review(
        rolled_back: ServiceClient) -> None:
    app, client, member = await setup(rolled_back)
    created = await submit(client, member, base="5000.00")
    claim = await get_claim(client, created["claim_id"], member.token())
    r = await client.post("/api/v1/settlements", json=[{"setl_id": claim["setl_id"], "certno": member.certno,
                                                        "insutype": "310", "med_type": "21",
                                                        "setl_time": "2026-03-05 14:20:00",
                                                        "medfee_sumamt": "18000.00", "psn_part_amt": "5000.00"}],
                          headers=bureau(member.branch))
    assert r.json()["accepted"] == 1
    r = await client.post("/api/v1/settlements", json=[{"setl_id": claim["setl_id"], "refd_setl_flag": "1"}],
                          headers=bureau(member.branch))
    assert r.json()["claims_reversed"] == [created["claim_id"]]
    claim = await get_claim(client, created["claim_id"], member.token())
    assert claim["status"] == "rejected" and claim["adjustments"] == []  # nothing had been approved
    assert await outbox_events(app, created["claim_id"], "claim.adjusted") == []


async def test_fraud_revocation_cancels_the_right_to_claim_and_reassesses_a_stay_in_review(
        rolled_back: ServiceClient) -> None:
    app, client, member = await setup(rolled_back)
    first = await submit_stay(client, member, "5000.00")
    second = await submit_stay(client, member, "2000.00")
    await approve_through(client, member, first["claim_id"])
    r = await client.post(f"/api/v1/claims/{first['claim_id']}/revocation", json={"reason": "伪造票据"},
                          headers=member.branch.centre_reviewer())
    assert r.status_code == 200 and r.json()["status"] == "revoked"

    later = await get_claim(client, second["claim_id"], member.token())
    assert later["status"] == "in_review" and later["aid_amount"] == "360.00"
    [adjustment] = later["adjustments"]
    assert (adjustment["cause"], adjustment["announced"]) == ("revoked_for_fraud", False)
    # Still in review: payments hears the new amount with claim.approved, not as an adjustment.
    assert await outbox_events(app, second["claim_id"], "claim.adjusted") == []
    approved = await approve_through(client, member, second["claim_id"])
    assert approved["aid_amount"] == "360.00"
    [event] = await outbox_events(app, second["claim_id"], "claim.approved")
    assert event["payload"]["aid_amount"] == "360.00"

    refused = await submit_stay(client, member, "3000.00")
    assert refused["status"] == "rejected" and refused["rejection"]["code"] == "revoked_for_fraud"


# --- second aid -----------------------------------------------------------------------------------------------
async def second_aid_member(app: FastAPI) -> Member:
    code = await publish_rulebook(app, "yunnan-19.yaml", "yn19")
    member = await cover(app, code)
    # Join the second-aid plan as well (a plan without its own fee).
    assert await apply_event(app, MemberCovered(
        member_id=member.member_id, period=code, plans=["inpatient", "second-aid"],
        coverage_from=TODAY - timedelta(days=180), coverage_to=TODAY + timedelta(days=180), name="王芳",
        certno=member.certno, sex="female", member_type="in_service", unit=member.branch.unit,
        unit_path=member.branch.path, bank_account="6222020200112233445", bank_name="工行", phone="13812345678",
        renewing=True, fee=Decimal("120.00")))
    return member


async def test_a_second_aid_claim_goes_straight_to_the_centre_with_its_inputs_derived(
        rolled_back: ServiceClient) -> None:
    app, client = await rolled_back("claims")
    member = await second_aid_member(app)
    stay = await client.post("/api/v1/claims", json=claim_body(member, base="300000.00", own_pay="200000.00"),
                             headers=member.branch.unit_agent())
    assert stay.json()["aid_amount"] == "265760.00"  # 2760 + 63000 + 200000 on the base
    await approve_through(client, member, stay.json()["claim_id"])
    # Typed-in figures are refused (issue #12 item 3): second aid is claimed per member and period.
    per_period = {"member_id": member.member_id, "plan": "second-aid", "period": member.period}
    r = await client.post("/api/v1/claims", json={**per_period, "second_aid": {"years_of_participation": 6}},
                          headers=member.branch.unit_agent())
    assert (r.status_code, r.json()["code"]) == (422, "second_aid_per_period")
    r = await client.post("/api/v1/claims", json=per_period, headers=member.branch.unit_agent())
    assert r.status_code == 201, r.text
    claim = await get_claim(client, r.json()["claim_id"], member.token())
    # remaining derived = psn_part_amt 500000.00 - first aid 265760.00 = 234240.00; years derived from the
    # coverages claims knows (one period): the 1-year row, 30% (rulebooks/yunnan-19.yaml) -> 70272.00.
    assert claim["second_aid"]["remaining_amount"] == "234240.00"
    assert claim["second_aid"]["years_of_participation"] == 1
    assert claim["aid_amount"] == "70272.00"
    assert claim["approval"]["current_level"] == claim["approval"]["final_level"] == "centre"
    assert (await decide(client, claim["claim_id"], member.branch.agency_reviewer())).status_code == 403
    approved = await decide(client, claim["claim_id"], member.branch.centre_reviewer())
    assert approved.json()["status"] == "approved"


async def test_second_aid_names_no_settlement_and_counts_a_first_aid_stay_once(
        rolled_back: ServiceClient) -> None:
    app, client = await rolled_back("claims")
    member = await second_aid_member(app)
    first = claim_body(member, base="300000.00", own_pay="0.00")
    r = await client.post("/api/v1/claims", json=first, headers=member.branch.unit_agent())
    assert r.json()["aid_amount"] == "265760.00"  # 2760 + 63000 + 200000
    await approve_through(client, member, r.json()["claim_id"])
    r = await client.post("/api/v1/claims", json={**first, "plan": "second-aid"}, headers=member.branch.unit_agent())
    assert (r.status_code, r.json()["code"]) == (422, "second_aid_per_period")
    assert r.json()["errors"][0]["loc"] == ["body", "settlement"]
    r = await client.post("/api/v1/claims", json={"member_id": member.member_id, "plan": "second-aid",
                                                  "period": member.period}, headers=member.branch.unit_agent())
    assert r.status_code == 201 and r.json()["status"] == "in_review"
    claim = await get_claim(client, r.json()["claim_id"], member.token())
    assert claim["second_aid"]["remaining_amount"] == "34240.00"  # 300000 - 265760: below the threshold
    assert claim["second_aid"]["stays"] == 1
    assert claim["aid_amount"] == "0.00"


# --- calendar and deadlines -----------------------------------------------------------------------------------
async def test_an_admin_enters_a_years_holidays_and_a_year_without_data_is_a_warning(
        rolled_back: ServiceClient) -> None:
    app, client = await rolled_back("claims")
    r = await client.get("/api/v1/calendar/2098", headers=ADMIN)
    assert r.status_code == 200 and r.json()["known"] is False and "2098" in r.json()["warning"]
    r = await client.get("/api/v1/calendar/2026", headers=ADMIN)
    body = r.json()
    assert body["known"] and {"date": "2026-10-10", "name": "National Day"} in body["workdays"]

    year = {"holidays": [{"date": "2099-10-01", "name": "国庆节"}, {"date": "2099-10-02", "name": "国庆节"}],
            "workdays": [{"date": "2099-10-10", "name": "国庆节调休"}]}
    r = await client.post("/api/v1/calendar/2099", json=year, headers=token_for("centre_reviewer", "YN"))
    assert r.status_code == 403
    r = await client.post("/api/v1/calendar/2099", json={"holidays": [{"date": "2098-10-01"}]}, headers=ADMIN)
    assert r.status_code == 422 and r.json()["code"] == "calendar_invalid"
    r = await client.post("/api/v1/calendar/2099", json=year, headers=ADMIN)
    assert r.status_code == 200, r.text
    assert r.json()["source"] == "admin" and len(r.json()["holidays"]) == 2

    async with app.state.db.transaction() as session:
        calendar = await load_calendar(session)
    # 2099-09-30 is a Wednesday: 1 and 2 October are off, Saturday 10 October works.
    assert add_working_days(date(2099, 9, 30), 1, calendar).due == date(2099, 10, 5)
    assert add_working_days(date(2099, 9, 30), 1, calendar).warning is None
    assert add_working_days(date(2098, 12, 30), 3, calendar).warning is not None


async def test_returning_for_documents_stops_the_clock_and_resubmission_restarts_it_in_full(
        rolled_back: ServiceClient) -> None:
    app, client, member = await setup(rolled_back)
    created = await submit(client, member, base="5000.00")
    r = await decide(client, created["claim_id"], member.branch.agency_reviewer(), "return", reason="缺出院证")
    assert r.json()["approval"]["due_date"] is None
    r = await client.post(f"/api/v1/claims/{created['claim_id']}/resubmission", json={"note": "已补"},
                          headers=member.branch.unit_agent())
    async with app.state.db.transaction() as session:
        calendar = await load_calendar(session)
    assert r.json()["approval"]["due_date"] == add_working_days(TODAY, 5, calendar).due.isoformat()


# --- overdue ----------------------------------------------------------------------------------------------------
async def set_due(app: FastAPI, claim_id: str, due: date) -> None:
    async with app.state.db.transaction() as session:
        await session.execute(update(Claim).where(Claim.id == uuid.UUID(claim_id)).values(due_date=due))


async def sweep(app: FastAPI) -> None:
    async with app.state.db.transaction() as session:
        await sweep_overdue(session)


async def test_a_claim_past_due_gets_one_reminder_then_one_escalation_to_the_level_above(
        rolled_back: ServiceClient) -> None:
    app, client, member = await setup(rolled_back)
    created = await submit(client, member, base="11000.00")  # 3460.00: the agency point, then the office
    claim_id = created["claim_id"]
    await set_due(app, claim_id, TODAY - timedelta(days=1))
    await sweep(app)
    await sweep(app)
    [reminder] = await outbox_events(app, claim_id, "claim.overdue")
    assert reminder["payload"]["kind"] == "reminder" and reminder["payload"]["org"] == member.branch.agency
    assert reminder["payload"]["level"] == "agency_point"

    r = await client.get("/api/v1/claims/overdue", headers=member.branch.office_reviewer())
    assert r.status_code == 200 and [(c["claim_id"], c["notices"]) for c in r.json()] == [(claim_id, ["reminder"])]
    r = await client.get("/api/v1/claims/overdue", headers=member.branch.sibling().agency_reviewer())
    assert r.status_code == 200 and r.json() == []

    await set_due(app, claim_id, TODAY - timedelta(days=30))
    await sweep(app)
    await sweep(app)
    kinds = sorted(e["payload"]["kind"] for e in await outbox_events(app, claim_id, "claim.overdue"))
    assert kinds == ["escalation", "reminder"]
    [escalation] = [e for e in await outbox_events(app, claim_id, "claim.overdue")
                    if e["payload"]["kind"] == "escalation"]
    assert escalation["payload"]["org"] == member.branch.office

    # Passed up to the office, the claim is announced afresh there (once per level and kind).
    assert (await decide(client, claim_id, member.branch.agency_reviewer())).status_code == 200
    await set_due(app, claim_id, TODAY - timedelta(days=30))  # now due at the office
    await sweep(app)
    events = await outbox_events(app, claim_id, "claim.overdue")
    assert sorted((e["payload"]["level"], e["payload"]["kind"]) for e in events) == [
        ("agency_point", "escalation"), ("agency_point", "reminder"), ("office", "escalation"), ("office", "reminder")]


# --- documents and the review queue ------------------------------------------------------------------------------
def real_jpeg() -> bytes:
    """A photo that decodes (documents are checked by their content, not their first bytes)."""
    out = io.BytesIO()
    Image.new("RGB", (32, 24), (200, 30, 30)).save(out, "JPEG")
    return out.getvalue()


def real_pdf() -> bytes:
    out = io.BytesIO()
    writer = PdfWriter()
    writer.add_blank_page(595, 842)
    writer.write(out)
    return out.getvalue()


JPEG, PDF = real_jpeg(), real_pdf()


@pytest.fixture
def documents_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CLAIMS_DOCUMENTS_DIR", str(tmp_path / "documents"))
    monkeypatch.setenv("CLAIMS_MAX_DOCUMENT_BYTES", "4096")
    return tmp_path / "documents"


async def upload(client: httpx.AsyncClient, claim_id: str, headers: dict[str, str], content: bytes,
                 doc_type: str, filename: str = "scan.jpg") -> httpx.Response:
    return await client.post(f"/api/v1/claims/{claim_id}/documents", headers=headers,
                             files={"file": (filename, content, "application/octet-stream")},
                             data={"doc_type": doc_type})


async def test_documents_are_stored_outside_the_database_listed_and_served_to_the_members_branch(
        rolled_back: ServiceClient, documents_dir: Path) -> None:
    _, client, member = await setup(rolled_back)
    created = await submit(client, member, base="5000.00")
    claim_id = created["claim_id"]

    r = await upload(client, claim_id, member.branch.unit_agent(), JPEG, "医保结算单")
    assert r.status_code == 201, r.text
    doc = r.json()
    assert (doc["doc_type"], doc["content_type"], doc["size"]) == ("settlement_sheet", "image/jpeg", len(JPEG))
    assert list(documents_dir.rglob("*.jpg"))
    r = await upload(client, claim_id, member.token(), PDF, "discharge_certificate", "出院证.pdf")
    assert r.status_code == 201 and r.json()["content_type"] == "application/pdf"

    # A text file renamed .jpg, an unknown type and an oversized photo are refused.
    r = await upload(client, claim_id, member.token(), b"hello, not an image", "身份证")
    assert r.status_code == 422 and r.json()["code"] == "document_type_not_allowed"
    r = await upload(client, claim_id, member.token(), JPEG, "体检报告")
    assert r.status_code == 422 and r.json()["code"] == "document_type_unknown"
    r = await upload(client, claim_id, member.token(), JPEG + b"\x00" * 5000, "身份证")
    assert r.status_code == 413 and r.json()["code"] == "document_too_large"

    r = await client.get(f"/api/v1/claims/{claim_id}/documents", headers=member.branch.agency_reviewer())
    listing = r.json()
    assert [d["doc_type"] for d in listing["documents"]] == ["settlement_sheet", "discharge_certificate"]
    assert listing["missing_documents"] == ["id_card", "bank_card"]

    r = await client.get(f"/api/v1/claims/{claim_id}/documents/{doc['document_id']}",
                         headers=member.branch.office_reviewer())
    assert r.status_code == 200 and r.content == JPEG and r.headers["content-type"] == "image/jpeg"
    outsider = member.branch.sibling()
    r = await client.get(f"/api/v1/claims/{claim_id}/documents/{doc['document_id']}",
                         headers=outsider.agency_reviewer())
    assert r.status_code == 403
    r = await upload(client, claim_id, outsider.unit_agent(), JPEG, "身份证")
    assert r.status_code == 403


async def test_the_review_queue_shows_amounts_due_dates_and_missing_documents_oldest_first(
        rolled_back: ServiceClient, documents_dir: Path) -> None:
    app, client = await rolled_back("claims")
    branch = Branch()
    period = (await setup(rolled_back))[2].period
    member = await cover(app, period, branch)
    older = await submit(client, member, base="2000.00")
    newer = await submit(client, member, base="1000.00")
    await upload(client, newer["claim_id"], member.branch.unit_agent(), JPEG, "id_card")
    r = await client.get("/api/v1/review-queue", headers=branch.agency_reviewer())
    queue = r.json()
    assert [c["claim_id"] for c in queue] == [older["claim_id"], newer["claim_id"]]
    assert queue[0]["aid_amount"] == "360.00" and queue[0]["due_date"] and queue[0]["overdue"] is False
    assert queue[0]["missing_documents"] == ["settlement_sheet", "discharge_certificate", "id_card", "bank_card"]
    assert queue[1]["missing_documents_zh"] == ["医保结算单", "出院证", "银行卡"]


async def test_the_reviewer_who_rejected_an_earlier_stay_may_still_decide_the_reassessed_later_one(
        rolled_back: ServiceClient) -> None:
    _, client, member = await setup(rolled_back)
    first = await submit_stay(client, member, "5000.00")
    second = await submit_stay(client, member, "2000.00")
    reviewer = str(uuid.uuid4())
    r = await decide(client, first["claim_id"], member.branch.agency_reviewer(reviewer), "reject", reason="不实")
    assert r.status_code == 200
    r = await decide(client, second["claim_id"], member.branch.agency_reviewer(reviewer))
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["aid_amount"]) == ("approved", "360.00")
    [step] = [s for s in r.json()["approval"]["steps"] if s["decision"] == "adjust"]
    assert step["by"].startswith("system")
