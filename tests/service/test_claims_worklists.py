"""Issue #10, as a new user meets it: a unit agent reads the claim it submitted even when refused; a member
claims does not know yet is a wait (409) or unknown (404), never a permission error; the women's plan pays a
listed disease after an earlier stay that paid nothing; and every role has a claim list (JSON pages and CSV)
scoped to its branch. Real PostgreSQL, the claims service in-process (tests/conftest.py)."""

from __future__ import annotations

import csv
import io
import random
import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

from fastapi.routing import APIRoute

from deploy.people import certno as make_certno
from deploy.people import luhn_account
from shared.events import MemberCovered
from tests.conftest import ServiceClient, apply_event, token_for
from tests.service.test_claims import (
    TODAY,
    Branch,
    Member,
    claim_body,
    cover,
    decide,
    publish_period,
    publish_rulebook,
    setup,
    short,
    submit,
)


# --- (a) every claim records the unit of its submitter and member ---------------------------------------------
async def test_a_unit_agent_reads_the_claim_it_submitted_even_when_refused_not_covered(
        rolled_back: ServiceClient) -> None:
    _app, client, member = await setup(rolled_back)
    branch = member.branch
    refused = await submit(client, member, discharge=TODAY - timedelta(days=200))  # before the coverage began
    assert refused["status"] == "rejected" and refused["rejection"]["code"] == "not_covered"
    r = await client.get(f"/api/v1/claims/{refused['claim_id']}", headers=branch.unit_agent())
    assert r.status_code == 200, r.text  # was 403: the claim had no unit
    claim = r.json()
    assert (claim["unit"], claim["submitter_org"], claim["submitted_by"]) == (branch.unit, branch.unit,
                                                                            f"unit_agent-{branch.unit}")
    assert (await client.get(f"/api/v1/claims/{refused['claim_id']}", headers=branch.agency_reviewer())
            ).status_code == 200  # the branch above the unit reads it too
    other = branch.sibling()
    r = await client.get(f"/api/v1/claims/{refused['claim_id']}", headers=other.unit_agent())
    assert r.status_code == 403 and r.json()["code"] == "outside_subtree"


# --- (b) a member claims does not know: a wait or unknown, never 403 -------------------------------------------
async def test_a_member_known_only_in_another_unit_is_a_wait_then_not_found_never_403(
        rolled_back: ServiceClient) -> None:
    """The member moved to this unit: their new coverage is on its way from enrollment (within a second)."""
    app, client = await rolled_back("claims")
    period = await publish_period(app)
    member = await cover(app, period)  # covered in another unit than the agent's
    agent = Branch(centre=member.branch.centre, office=member.branch.office)
    body = claim_body(member, discharge=TODAY - timedelta(days=200))  # no coverage on that day
    r = await client.post("/api/v1/claims", json=body, headers=agent.unit_agent())
    assert r.status_code == 409 and r.json()["code"] == "member_not_yet_known", r.text
    assert int(r.headers["Retry-After"]) > 0
    settings = app.state.settings
    grace, settings.reference_grace_seconds = settings.reference_grace_seconds, 0
    try:
        r = await client.post("/api/v1/claims", json=body, headers=agent.unit_agent())
        assert r.status_code == 404 and r.json()["code"] == "member_not_found", r.text
    finally:
        settings.reference_grace_seconds = grace


# --- (c) women's plan: once_per counts aid paid ---------------------------------------------------------------
async def publish_women_plan(rolled_back: ServiceClient) -> tuple[str, Member]:
    app, _ = await rolled_back("claims")
    # 2022: C50 32,000 is seed 004 森工 "2022年，职工张女士因患乳房恶性肿瘤…32000元" (2019 has no sum for it)
    code = await publish_rulebook(app, "neimenggu-2022.yaml", "nmg22")
    branch, rng = Branch(), random.Random(uuid.uuid4().int)
    member = Member(member_id=f"M{short()}", certno=make_certno(rng), period=code, branch=branch)
    assert await apply_event(app, MemberCovered(
        member_id=member.member_id, period=code, plans=["xinkang"],
        coverage_from=TODAY - timedelta(days=180), coverage_to=TODAY + timedelta(days=180),
        name="乌兰·其其格", certno=member.certno, sex="female", member_type="in_service", unit=branch.unit,
        unit_path=branch.path, bank_account=luhn_account(rng), bank_name="中国工商银行呼和浩特分行",
        phone="13812345678", renewing=True, fee=Decimal("35.00")))
    return code, member


def women_claim(member: Member, icd10: str, days_ago: int) -> dict[str, object]:
    body = claim_body(member, discharge=TODAY - timedelta(days=days_ago))
    body["plan"], body["diagnosis"] = "xinkang", {"icd10": icd10, "name": "诊断"}
    return body


async def test_womens_plan_pays_a_listed_disease_after_an_earlier_stay_that_paid_nothing(
        rolled_back: ServiceClient) -> None:
    """Seed 004 女性馨康: once per period counts aid paid, not claims: an unlisted diagnosis paid 0.00 and
    leaves the period's one payment for the breast cancer that follows; a second listed disease then pays 0."""
    _, client = await rolled_back("claims")
    _, member = await publish_women_plan(rolled_back)
    agent = member.branch.unit_agent()
    first = await client.post("/api/v1/claims", json=women_claim(member, "I10", 40), headers=agent)  # 高血压: unlisted
    assert first.status_code == 201 and first.json()["aid_amount"] == "0.00", first.text
    second = await client.post("/api/v1/claims", json=women_claim(member, "C50.9", 20), headers=agent)
    assert second.status_code == 201 and second.json()["aid_amount"] == "32000.00", second.text
    third = await client.post("/api/v1/claims", json=women_claim(member, "D25.1", 5), headers=agent)
    assert third.status_code == 201 and third.json()["aid_amount"] == "0.00", third.text


# --- (d) the claim list and its CSV ------------------------------------------------------------------------------
async def test_the_claim_list_filters_pages_and_keeps_to_the_callers_branch(rolled_back: ServiceClient) -> None:
    app, client, member = await setup(rolled_back)
    branch = member.branch
    neighbour = await cover(app, member.period, Branch(centre=branch.centre, office=branch.office,
                                                       agency=branch.agency))  # another unit of the agency point
    ids = [(await submit(client, member, base=base))["claim_id"] for base in ("1000.00", "2000.00", "3000.00")]
    refused = (await submit(client, member, med_type="11"))["claim_id"]  # outpatient: refused at intake
    other = (await submit(client, neighbour))["claim_id"]
    assert (await decide(client, ids[0], branch.agency_reviewer())).status_code == 200  # 1000 -> 70 aid: final

    r = await client.get("/api/v1/claims", headers=branch.unit_agent())
    assert r.status_code == 200, r.text
    page = r.json()
    assert [c["claim_id"] for c in page["items"]] == [refused, *reversed(ids)]  # newest first, own unit only
    assert page["next_cursor"] is None
    item = page["items"][-1]
    assert (item["status"], item["member_id"], item["unit"], item["plan"]) == ("approved", member.member_id,
                                                                                branch.unit, "inpatient")
    assert item["certno_masked"] != member.certno and item["certno_masked"].endswith(member.certno[-4:])
    assert member.certno not in r.text  # personal data masked

    # keyset pages: 2 + 2, no claim twice, none lost
    first = (await client.get("/api/v1/claims", params={"limit": 2}, headers=branch.unit_agent())).json()
    assert len(first["items"]) == 2 and first["next_cursor"]
    second = (await client.get("/api/v1/claims", params={"limit": 2, "cursor": first["next_cursor"]},
                               headers=branch.unit_agent())).json()
    assert [c["claim_id"] for c in first["items"] + second["items"]] == [refused, *reversed(ids)]
    assert second["next_cursor"] is None

    async def ids_for(params: dict[str, str], headers: dict[str, str]) -> list[str]:
        r = await client.get("/api/v1/claims", params=params, headers=headers)
        assert r.status_code == 200, r.text
        return [c["claim_id"] for c in r.json()["items"]]

    agency = branch.agency_reviewer()  # the agency point sees both units
    assert await ids_for({}, agency) == [other, refused, *reversed(ids)]
    assert await ids_for({"status": "rejected"}, agency) == [refused]
    assert await ids_for({"status": "in_review", "level": "agency_point"}, agency) == [other, ids[2], ids[1]]
    assert await ids_for({"unit": neighbour.branch.unit}, agency) == [other]
    assert await ids_for({"member_id": member.member_id, "status": "approved"}, agency) == [ids[0]]
    assert await ids_for({"period": member.period, "plan": "inpatient"}, agency) == [other, refused, *reversed(ids)]
    assert await ids_for({"plan": "second_aid"}, agency) == []
    assert await ids_for({"submitted_from": TODAY.isoformat(), "submitted_to": TODAY.isoformat()}, agency) == \
        [other, refused, *reversed(ids)]
    assert await ids_for({"submitted_to": (TODAY - timedelta(days=2)).isoformat()}, agency) == []
    assert await ids_for({}, neighbour.branch.unit_agent()) == [other]  # a unit sees its own
    assert await ids_for({}, token_for("member", member_id=member.member_id)) == [refused, *reversed(ids)]
    assert await ids_for({"member_id": member.member_id}, token_for("member", member_id=neighbour.member_id)) == []
    assert await ids_for({}, Branch().centre_reviewer()) == []  # another centre

    for params in ({"limit": 501}, {"limit": 0}, {"cursor": "not-a-cursor"}, {"status": "lost"},
                   {"level": "planet"}, {"submitted_from": "2026-02-30"}):
        r = await client.get("/api/v1/claims", params=params, headers=agency)
        assert r.status_code == 422, (params, r.text)
    r = await client.get("/api/v1/claims", headers=token_for("bureau", branch.office, tuple(branch.path[:2]),
                                                              "office"))
    assert r.status_code == 403


async def test_the_claim_list_as_csv_for_excel(rolled_back: ServiceClient) -> None:
    _app, client, member = await setup(rolled_back)
    ids = [(await submit(client, member, base=base))["claim_id"] for base in ("1500.00", "12000.00")]
    r = await client.get("/api/v1/claims.csv", params={"member_id": member.member_id},
                         headers=member.branch.agency_reviewer())
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    assert r.content.startswith(b"\xef\xbb\xbf")  # the BOM Excel needs to read UTF-8
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert [row["claim_id"] for row in rows] == list(reversed(ids))
    assert [row["aid_amount"] for row in rows] == ["5000.00", "210.00"]  # 第八条: bases accumulate
    assert {row["status"] for row in rows} == {"in_review"} and member.certno not in r.text
    empty = await client.get("/api/v1/claims.csv", params={"member_id": member.member_id},
                             headers=Branch().unit_agent())
    assert empty.status_code == 200 and len(list(csv.reader(io.StringIO(empty.text.lstrip("\ufeff"))))) == 1


# --- typed API ----------------------------------------------------------------------------------------------------
async def test_every_claims_route_declares_what_it_answers(rolled_back: ServiceClient) -> None:
    """A response model (or a declared file/CSV media type) and the problem+json errors, on every claims route,
    the bureau feed's included."""
    app, client = await rolled_back("claims")
    routes: list[APIRoute] = []

    def walk(found: list[Any]) -> None:
        for route in found:
            if isinstance(route, APIRoute):
                routes.append(route)
            elif hasattr(route, "original_router"):  # FastAPI's lazily included router
                walk(route.original_router.routes)

    walk(list(app.routes))
    routes = [r for r in routes if "/api/v1" in r.path or r.path.startswith(("/claims", "/review", "/cover",
                                                                             "/calendar", "/periods"))]
    assert len(routes) >= 15, [r.path for r in routes]
    for route in routes:
        declared = route.response_model is not None or any(
            "content" in spec for status, spec in route.responses.items() if str(status) == "200")
        assert declared, f"{route.path} declares no response"
        assert any(int(s) >= 400 for s in route.responses), f"{route.path} declares no problem+json error"
    schema = (await client.get("/openapi.json")).json()
    claim = schema["components"]["schemas"]["ClaimOut"]["properties"]
    assert claim["aid_amount"]["anyOf"][0]["type"] == "string"
    assert "ClaimStatus" in str(claim["status"])
