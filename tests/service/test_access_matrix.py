"""The access matrix (issue 9 §5): every endpoint of every service x every role x an object inside and outside
the caller's branch, against the real services and PostgreSQL.

Every route is found by walking each service's ``app.routes``: a route missing from MATRIX (or from PUBLIC /
SELF) fails ``test_every_route_is_classified``, so a new endpoint cannot ship without saying who may call it.

The callers all sit in one branch (centre C > office O1 > agency point A1 > unit U1; finance and bureau at the
office O1, so that they have an outside). "Inside" is an object of the unit U1 (for a member: themselves).
"Outside" is the nearest object beyond the caller's organisation: another unit of A1 for a unit agent and a
member, another agency point of O1 for an agency reviewer, another office of C for an office reviewer, finance
and the bureau, another centre for the centre reviewer and the admin.

Outcomes: Y allowed (2xx, or a domain answer 409/422 given only after the rights check; a list is not empty);
E allowed but filtered to nothing (a list with nothing of the object's; a feed keeping nothing);
N refused (403, or 404 where the object is hidden from the caller). No cell may answer 401 or 5xx.
"""

from __future__ import annotations

import io
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from PIL import Image

from deploy.people import person
from shared.events import ClaimApproved, MemberCovered, PeriodPublished
from shared.rulebook import load_rulebook
from tests.conftest import RULEBOOKS, ServiceClient, apply_event, token_for

ROLES = ("admin", "centre_reviewer", "office_reviewer", "agency_reviewer", "unit_agent", "finance", "bureau",
         "member")
SERVICES = ("enrollment", "claims", "payments", "notifications")
TODAY = date.today()

# Each row: the outcome for the roles in ROLES order, two letters each: inside, outside.
# fmt: off
MATRIX: dict[tuple[str, str], str] = {
    #                                                                     admin cen off age unit fin bur mem
    ("enrollment", "POST /api/v1/orgs"):                                 "YY  NN  NN  NN  NN  NN  NN  NN",
    ("enrollment", "GET /api/v1/orgs/{code}"):                           "YY  YN  YN  YN  YN  YN  YN  YN",
    ("enrollment", "POST /api/v1/users"):                                "YY  NN  NN  NN  NN  NN  NN  NN",
    ("enrollment", "POST /api/v1/periods"):                              "YY  NN  NN  NN  NN  NN  NN  NN",
    ("enrollment", "PUT /api/v1/periods/{code}/rulebook"):               "YY  NN  NN  NN  NN  NN  NN  NN",
    ("enrollment", "GET /api/v1/periods/{code}"):                        "YY  YY  YY  YY  YY  YY  YY  YY",
    ("enrollment", "POST /api/v1/periods/{period}/units/{unit}/rosters"): "YY  YN  YN  YN  YN  NN  NN  NN",
    ("enrollment", "GET /api/v1/rosters/{roster_id}"):                   "YY  YN  YN  YN  YN  YN  NN  NN",
    ("enrollment", "POST /api/v1/rosters/{roster_id}/payments"):         "YY  NN  NN  NN  YN  YN  NN  NN",
    ("enrollment", "GET /api/v1/members"):                               "YY  YE  YE  YE  YE  YE  EE  YE",
    ("enrollment", "GET /api/v1/members/{member_id}"):                   "YY  YN  YN  YN  YN  YN  NN  YN",
    ("enrollment", "GET /api/v1/periods/{period}/summary"):              "YY  YY  NN  NN  NN  NN  NN  NN",
    ("enrollment", "POST /api/v1/members/{member_id}/withdrawal"):       "YY  NN  NN  NN  YN  NN  NN  NN",
    ("enrollment", "PATCH /api/v1/members/{member_id}"):                 "YY  NN  NN  NN  YN  NN  NN  NN",
    ("enrollment", "POST /api/v1/members/{member_id}/corrections"):      "YY  NN  NN  NN  NN  NN  NN  NN",
    ("enrollment", "GET /api/v1/members/{member_id}/audit"):             "YY  YN  YN  YN  YN  NN  NN  NN",
    ("enrollment", "POST /api/v1/periods/{period}/remittances"):         "YY  NN  NN  NN  NN  YN  NN  NN",
    ("enrollment", "GET /api/v1/periods/{period}/remittance-report"):    "YY  YY  YY  NN  NN  YY  NN  NN",
    ("enrollment", "POST /api/v1/periods/{code}/history"):               "YY  NN  NN  NN  NN  NN  NN  NN",
    # The dashboard's figures: aggregates of the caller's own branch (an outside object is never counted).
    ("enrollment", "GET /api/v1/stats/periods"):                         "YY  YY  YY  YY  NN  YY  NN  NN",
    ("enrollment", "GET /api/v1/stats/periods/{period}/enrollment"):     "YY  YY  YY  YY  NN  YY  NN  NN",
    ("claims", "GET /api/v1/stats/periods/{period}/claims"):             "YY  YY  YY  YY  NN  YY  NN  NN",
    ("payments", "GET /api/v1/stats/periods/{period}/payments"):         "YY  YY  YY  YY  NN  YY  NN  NN",
    ("enrollment", "POST /api/v1/members/{member_id}/release"):          "YY  YN  NN  NN  YN  NN  NN  NN",
    ("enrollment", "POST /api/v1/members/{member_id}/reveal"):           "YY  NN  NN  NN  YN  NN  NN  NN",
    ("claims", "GET /api/v1/claims/overdue"):                            "YY  YY  YY  YY  NN  NN  NN  NN",
    ("claims", "POST /api/v1/settlements"):                              "YY  NN  NN  NN  NN  NN  YE  NN",
    # The bureau's daily totals are its own (per sending organisation): no branch object to be outside of.
    ("claims", "POST /api/v1/settlements/totals"):                       "YY  NN  NN  NN  NN  NN  YY  NN",
    ("claims", "GET /api/v1/settlements/totals"):                        "YY  NN  NN  NN  NN  NN  YY  NN",
    # Records with no claim, for the staff who call the member; masked, in the caller's branch.
    ("claims", "GET /api/v1/settlements/unclaimed"):                     "YY  YE  YE  YE  YE  NN  NN  NN",
    ("claims", "POST /api/v1/claims"):                                   "YY  NN  NN  NN  YN  NN  NN  YN",
    ("claims", "GET /api/v1/claims/{claim_id}"):                         "YY  YN  YN  YN  YN  YN  NN  YN",
    ("claims", "GET /api/v1/claims"):                                    "YY  YE  YE  YE  YE  YE  NN  YE",
    ("claims", "GET /api/v1/claims.csv"):                                "YY  YE  YE  YE  YE  YE  NN  YE",
    # The claims wait at the agency points: the office's and the centre's queues hold none of them.
    ("claims", "GET /api/v1/review-queue"):                              "NN  EE  EE  YE  NN  NN  NN  NN",
    # A decision is taken at the claim's current level: the claims wait at the agency points.
    ("claims", "POST /api/v1/claims/{claim_id}/decisions"):              "NN  NN  NN  YN  NN  NN  NN  NN",
    ("claims", "POST /api/v1/claims/{claim_id}/resubmission"):           "NN  NN  NN  NN  YN  NN  NN  NN",
    ("claims", "POST /api/v1/claims/{claim_id}/revocation"):             "NN  YN  NN  NN  NN  NN  NN  NN",
    ("claims", "GET /api/v1/coverages"):                                 "YY  YE  YE  YE  YE  NN  NN  NN",
    ("claims", "POST /api/v1/claims/{claim_id}/documents"):              "YY  YN  YN  YN  YN  NN  NN  YN",
    ("claims", "GET /api/v1/claims/{claim_id}/documents"):               "YY  YN  YN  YN  YN  YN  NN  YN",
    ("claims", "GET /api/v1/claims/{claim_id}/documents/{document_id}"): "YY  YN  YN  YN  YN  YN  NN  YN",
    ("claims", "GET /api/v1/calendar/{year}"):                           "YY  YY  YY  YY  YY  YY  YY  YY",
    ("claims", "POST /api/v1/calendar/{year}"):                          "YY  NN  NN  NN  NN  NN  NN  NN",
    ("payments", "GET /api/v1/payment-instructions"):                    "YY  YE  YE  YE  YE  YE  NN  NN",
    # Finance only, in its branch; the place's instruction is not held: 409 once the caller may act on it.
    ("payments", "POST /api/v1/payment-instructions/{instruction_id}/confirm-hold"): "NN  NN  NN  NN  NN  YN  NN  NN",
    # The fund's batches and books are the centre's: an office's finance officer has none of them.
    ("payments", "POST /api/v1/payment-batches"):                        "NN  NN  NN  NN  NN  NN  NN  NN",
    ("payments", "GET /api/v1/payment-batches"):                         "NN  NN  NN  NN  NN  NN  NN  NN",
    ("payments", "GET /api/v1/payment-batches/{batch_id}"):              "NN  NN  NN  NN  NN  NN  NN  NN",
    ("payments", "POST /api/v1/payment-batches/{batch_id}/release"):     "NN  NN  NN  NN  NN  NN  NN  NN",
    ("payments", "GET /api/v1/payment-batches/{batch_id}/file"):         "NN  NN  NN  NN  NN  NN  NN  NN",
    ("payments", "POST /api/v1/payment-batches/{batch_id}/results"):     "NN  NN  NN  NN  NN  NN  NN  NN",
    ("payments", "GET /api/v1/ledger/periods/{period}"):                 "YY  NN  NN  NN  NN  NN  NN  NN",
    ("payments", "GET /api/v1/ledger/periods/{period}/fees-reconciliation"): "YY  NN  NN  NN  NN  NN  NN  NN",
    ("payments", "GET /api/v1/recoveries"):                              "YY  NN  NN  NN  NN  NN  NN  NN",
    ("payments", "POST /api/v1/recoveries/{recovery_id}/receipts"):      "NN  NN  NN  NN  NN  NN  NN  NN",
    ("notifications", "GET /api/v1/me/notifications"):                   "NN  NN  NN  NN  NN  NN  NN  YY",
    ("notifications", "POST /api/v1/me/notifications/{notification_id}/read"): "NN  NN  NN  NN  NN  NN  NN  YN",
    ("notifications", "GET /api/v1/notifications"):                      "YY  YN  YN  YN  YN  NN  NN  NN",
    ("notifications", "GET /api/v1/staff/notifications"):                "YY  YY  YY  YY  YY  NN  NN  NN",
    # The member's own channel choices (issue #13): theirs only, whoever else asks.
    ("notifications", "GET /api/v1/me/notification-preferences"):        "NN  NN  NN  NN  NN  NN  NN  YY",
    ("notifications", "PUT /api/v1/me/notification-preferences"):        "NN  NN  NN  NN  NN  NN  NN  YY",
    # A unit's lists for its staff up the branch (issue #13 item 6); no member or bureau reads them.
    ("enrollment", "GET /api/v1/units/{unit}/members"):                  "YY  YN  YN  YN  YN  YN  NN  NN",
    ("enrollment", "GET /api/v1/units/{unit}/rosters"):                  "YY  YN  YN  YN  YN  YN  NN  NN",
    # The unit agent makes its members' app accounts (a second one for the same member: 409).
    ("enrollment", "POST /api/v1/units/{unit}/member-accounts"):         "YY  NN  NN  NN  YN  NN  NN  NN",
    # The member's own claims and bureau records for the app (issue #13): theirs only, nobody else's.
    ("claims", "GET /api/v1/me/claims"):                                 "NN  NN  NN  NN  NN  NN  NN  YY",
    ("claims", "GET /api/v1/me/settlements"):                            "NN  NN  NN  NN  NN  NN  NN  YY",
}
# fmt: on
# Open to anyone, token or not: health, readiness, metrics (no personal data) and login itself.
PUBLIC = {(s, f"GET {p}") for s in SERVICES for p in ("/healthz", "/readyz", "/metrics")} | {
    ("enrollment", "POST /api/v1/auth/token"),
    # A member's own sign-up (issue #13): no account yet; the same answer whoever asks, rate-limited
    # (tests/service/test_member_signup.py).
    ("enrollment", "POST /api/v1/member-accounts/signup"), ("enrollment", "POST /api/v1/member-accounts/signup/confirm"),
    # The SMS provider's delivery receipts: no token of ours, a secret in the URL (test_sms_receipts.py).
    ("notifications", "POST /api/v1/sms/receipts/{token}")}
# The caller's own account, whatever the role: tested in test_security_logins.py.
SELF = {("enrollment", "POST /api/v1/auth/password")}
# The member's own record (GET /me, member role only): tested in test_personal_data.py.
ME = {("enrollment", "GET /api/v1/me"),
      # ... and its change of phone or bank account by code (test_member_contact_change.py).
      ("enrollment", "POST /api/v1/me/contact-change"), ("enrollment", "PATCH /api/v1/me")}

OUTSIDE = {"admin": "centre", "centre_reviewer": "centre", "office_reviewer": "office", "finance": "office",
           "bureau": "office", "agency_reviewer": "agency", "unit_agent": "unit", "member": "unit"}


def routes_of(app: FastAPI) -> set[str]:
    """Every (method, path) the app serves, walking included routers."""
    found: set[str] = set()

    def walk(routes: list[Any], prefix: str) -> None:
        for route in routes:
            if isinstance(route, APIRoute):
                found.update(f"{m} {prefix}{route.path}" for m in route.methods)
            elif hasattr(route, "original_router"):  # FastAPI's lazily included router
                walk(route.original_router.routes, prefix + route.include_context.prefix)
            elif hasattr(route, "routes") and hasattr(route, "path"):  # a mounted sub-application
                walk(route.routes, prefix + route.path)

    walk(list(app.routes), "")
    return {r for r in found if not r.startswith(("GET /docs", "GET /redoc", "GET /openapi", "HEAD "))}


# --- the world: one branch of callers, and an object in each place -------------------------------------------
@dataclass
class Place:
    """A unit and what each service holds of its one member."""

    path: list[str]
    member_id: str = ""
    certno: str = ""
    roster_id: str = ""
    claim_id: str = ""
    spare_claim_id: str = ""
    document_id: str = ""
    notification_id: str = ""
    instruction_id: str = ""

    @property
    def unit(self) -> str:
        return self.path[-1]

    @property
    def office(self) -> str:
        return self.path[1]


@dataclass
class World:
    clients: dict[str, httpx.AsyncClient]
    period: str = ""
    places: dict[str, Place] = field(default_factory=dict)  # inside, unit, agency, office, centre

    def token(self, role: str) -> dict[str, str]:
        inside = self.places["inside"]
        if role == "admin":
            return token_for("admin", user_id=str(uuid.uuid4()))
        if role == "member":
            return token_for("member", inside.unit, tuple(inside.path), "unit", member_id=inside.member_id)
        depth = {"centre_reviewer": 1, "office_reviewer": 2, "finance": 2, "bureau": 2, "agency_reviewer": 3,
                 "unit_agent": 4}[role]
        level = ("centre", "office", "agency_point", "unit")[depth - 1]
        path = tuple(inside.path[:depth])
        return token_for(role, path[-1], path, level, user_id=str(uuid.uuid4()))


def jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (16, 16), (20, 90, 160)).save(out, "JPEG")
    return out.getvalue()


def period_doc(code: str) -> dict[str, Any]:
    doc = load_rulebook((RULEBOOKS / "yunnan-18.yaml").read_bytes()).to_document()
    doc.update(code=code, previous_period=None, windows={
        "enrolment": {"from": (TODAY - timedelta(days=5)).isoformat(), "to": (TODAY + timedelta(days=5)).isoformat()},
        "coverage": {"from": (TODAY - timedelta(days=200)).isoformat(),
                     "to": (TODAY + timedelta(days=200)).isoformat()},
        "claims": {"from": (TODAY - timedelta(days=200)).isoformat(), "to": (TODAY + timedelta(days=300)).isoformat()},
    })
    return doc


def plausible_settlement(base: str = "5000.00") -> dict[str, str]:
    psn = Decimal(base)
    return {"setl_id": f"S{uuid.uuid4().hex}", "med_type": "21", "medfee_sumamt": f"{psn * 3:.2f}",
            "fund_pay_sumamt": f"{psn * 2:.2f}", "psn_part_amt": f"{psn:.2f}", "fulamt_ownpay_amt": "0.00"}


def claim_body(place: Place, settlement: dict[str, str] | None = None) -> dict[str, Any]:
    discharge = TODAY - timedelta(days=10)
    return {"member_id": place.member_id, "plan": "inpatient", "admission_date": (discharge - timedelta(days=5))
            .isoformat(), "discharge_date": discharge.isoformat(), "diagnosis": {"icd10": "I21.9", "name": "心梗"},
            "settlement": settlement or plausible_settlement()}


async def ok(r: httpx.Response) -> dict[str, Any]:
    assert r.status_code in (200, 201), r.text
    return dict(r.json())


async def build_world(service_client: ServiceClient) -> World:
    clients = {name: (await service_client(name))[1] for name in SERVICES}
    apps = {name: (await service_client(name))[0] for name in SERVICES}
    w = World(clients=clients)
    s = uuid.uuid4().hex[:5].upper()
    c, c2 = f"MX{s}", f"MY{s}"
    paths = {
        "inside": [c, f"{c}-O1", f"{c}-O1-A1", f"{c}-O1-A1-U1"],
        "unit": [c, f"{c}-O1", f"{c}-O1-A1", f"{c}-O1-A1-U2"],
        "agency": [c, f"{c}-O1", f"{c}-O1-A2", f"{c}-O1-A2-U1"],
        "office": [c, f"{c}-O2", f"{c}-O2-A1", f"{c}-O2-A1-U1"],
        "centre": [c2, f"{c2}-O1", f"{c2}-O1-A1", f"{c2}-O1-A1-U1"],
    }
    w.places = {name: Place(path=path) for name, path in paths.items()}
    admin = token_for("admin")
    en = clients["enrollment"]
    levels = ("centre", "office", "agency_point", "unit")
    for path in paths.values():
        for depth, code in enumerate(path):
            r = await en.post("/api/v1/orgs", headers=admin, json={
                "code": code, "name": f"{levels[depth]} {code}", "level": levels[depth],
                "parent": path[depth - 1] if depth else None})
            assert r.status_code in (201, 409), r.text
    w.period = f"mx-{s.lower()}"
    doc = period_doc(w.period)
    assert (await en.post("/api/v1/periods", json=doc, headers=admin)).status_code == 201
    assert await apply_event(apps["claims"], PeriodPublished(period=w.period, rulebook=doc))
    rng = random.Random(s)
    claims, payments, notes = clients["claims"], apps["payments"], apps["notifications"]
    for place in w.places.values():
        someone = person(rng)
        roster = await ok(await en.post(f"/api/v1/periods/{w.period}/units/{place.unit}/rosters", headers=admin,
                                        json={"staff": {"total": 1, "in_service": 1, "basic_insured_in_service": 1},
                                              "members": [someone]}))
        place.roster_id = roster["roster_id"]
        await ok(await en.post(f"/api/v1/rosters/{place.roster_id}/payments", headers=admin, json={
            "amount": roster["fee_total"], "reference": f"BANK-{s}", "paid_at": TODAY.isoformat()}))
        [found] = (await en.get("/api/v1/members", params={"certno": someone["certno"]}, headers=admin)).json()
        place.member_id, place.certno = found["member_id"], str(someone["certno"])
        covered = MemberCovered(
            member_id=place.member_id, period=w.period, plans=["inpatient"],
            coverage_from=TODAY - timedelta(days=200), coverage_to=TODAY + timedelta(days=200),
            name=str(someone["name"]), certno=place.certno, sex=str(someone["sex"]), member_type="in_service",
            unit=place.unit, unit_path=place.path, bank_account=str(someone["bank_account"]),
            bank_name=str(someone["bank_name"]), phone=str(someone["phone"]), renewing=False, fee=Decimal("120.00"))
        for app in (apps["claims"], payments, notes):
            assert await apply_event(app, covered)
        place.claim_id = (await ok(await claims.post("/api/v1/claims", json=claim_body(place), headers=admin)))[
            "claim_id"]
        place.spare_claim_id = (await ok(await claims.post("/api/v1/claims", json=claim_body(place),
                                                           headers=admin)))["claim_id"]
        document = await ok(await claims.post(f"/api/v1/claims/{place.claim_id}/documents", headers=admin,
                                              files={"file": ("id.jpg", jpeg(), "image/jpeg")},
                                              data={"doc_type": "id_card"}))
        place.document_id = document["document_id"]
        # A bureau record of the member with no claim on it (GET /settlements/unclaimed lists it)
        feed = await ok(await claims.post("/api/v1/settlements", headers=admin, json=[{
            **plausible_settlement(), "certno": place.certno, "insutype": "310",
            "setl_time": f"{TODAY - timedelta(days=10)} 09:30:00"}]))
        assert feed["accepted"] == 1, feed
        for app in (payments, notes):
            assert await apply_event(app, ClaimApproved(
                claim_id=place.claim_id, member_id=place.member_id, period=w.period, plan="inpatient",
                aid_amount=Decimal("1260.00"), rulebook_code="yunnan-18"))
        [paying] = (await clients["payments"].get("/api/v1/payment-instructions", params={
            "claim_id": place.claim_id}, headers=admin)).json()
        place.instruction_id = paying["instruction_id"]
        feed = (await clients["notifications"].get("/api/v1/me/notifications", headers=token_for(
            "member", member_id=place.member_id))).json()
        place.notification_id = feed[0]["notification_id"]
    return w


# --- one request per endpoint, aimed at a place ---------------------------------------------------------------
Request = tuple[str, str, dict[str, Any]]  # method, url, httpx keyword arguments
Builder = Callable[[World, Place], Request]


def get(url: Callable[[World, Place], str], **params: Callable[[World, Place], str]) -> Builder:
    return lambda w, p: ("GET", url(w, p), {"params": {k: f(w, p) for k, f in params.items()}})


def send(method: str, url: Callable[[World, Place], str], body: Callable[[World, Place], Any] | None = None,
         **extra: Any) -> Builder:
    def build(w: World, p: Place) -> Request:
        kwargs: dict[str, Any] = dict(extra)
        if body is not None:
            kwargs["json"] = body(w, p)
        return method, url(w, p), kwargs
    return build


NOWHERE = str(uuid.UUID(int=1))
REQUESTS: dict[tuple[str, str], Builder] = {
    ("enrollment", "POST /api/v1/orgs"): send("POST", lambda w, p: "/api/v1/orgs", lambda w, p: {
        "code": f"{p.path[2]}-{uuid.uuid4().hex[:6]}", "name": "新工会", "level": "unit", "parent": p.path[2]}),
    ("enrollment", "GET /api/v1/orgs/{code}"): get(lambda w, p: f"/api/v1/orgs/{p.unit}"),
    ("enrollment", "POST /api/v1/users"): send("POST", lambda w, p: "/api/v1/users", lambda w, p: {
        "username": f"mx-{uuid.uuid4().hex[:8]}", "password": "correct-horse-battery", "role": "unit_agent",
        "org": p.unit}),
    ("enrollment", "POST /api/v1/periods"): send("POST", lambda w, p: "/api/v1/periods", lambda w, p: {}),
    ("enrollment", "PUT /api/v1/periods/{code}/rulebook"): send(
        "PUT", lambda w, p: f"/api/v1/periods/{w.period}/rulebook?reason=matrix", lambda w, p: {}),
    ("enrollment", "GET /api/v1/periods/{code}"): get(lambda w, p: f"/api/v1/periods/{w.period}"),
    ("enrollment", "POST /api/v1/periods/{period}/units/{unit}/rosters"): send(
        "POST", lambda w, p: f"/api/v1/periods/{w.period}/units/{p.unit}/rosters", lambda w, p: {"staff": "none"}),
    ("enrollment", "GET /api/v1/rosters/{roster_id}"): get(lambda w, p: f"/api/v1/rosters/{p.roster_id}"),
    ("enrollment", "POST /api/v1/rosters/{roster_id}/payments"): send(  # paid in full already: 409 when allowed
        "POST", lambda w, p: f"/api/v1/rosters/{p.roster_id}/payments", lambda w, p: {
            "amount": "1.00", "reference": "matrix", "paid_at": TODAY.isoformat()}),
    ("enrollment", "GET /api/v1/members"): get(lambda w, p: "/api/v1/members", certno=lambda w, p: p.certno),
    ("enrollment", "GET /api/v1/members/{member_id}"): get(lambda w, p: f"/api/v1/members/{p.member_id}"),
    ("enrollment", "GET /api/v1/periods/{period}/summary"): get(lambda w, p: f"/api/v1/periods/{w.period}/summary"),
    ("enrollment", "POST /api/v1/members/{member_id}/withdrawal"): send(  # no coverage that late: 409
        "POST", lambda w, p: f"/api/v1/members/{p.member_id}/withdrawal",
        lambda w, p: {"date": (TODAY + timedelta(days=300)).isoformat(), "reason": "matrix"}),
    ("enrollment", "PATCH /api/v1/members/{member_id}"): send(
        "PATCH", lambda w, p: f"/api/v1/members/{p.member_id}", lambda w, p: {"phone": "13912345678",
                                                                              "reason": "matrix"}),
    ("enrollment", "POST /api/v1/members/{member_id}/corrections"): send(  # nothing to correct: 422
        "POST", lambda w, p: f"/api/v1/members/{p.member_id}/corrections",
        lambda w, p: {"period": w.period, "reason": "matrix check"}),
    ("enrollment", "GET /api/v1/members/{member_id}/audit"): get(lambda w, p: f"/api/v1/members/{p.member_id}/audit"),
    ("enrollment", "POST /api/v1/periods/{period}/remittances"): send(
        "POST", lambda w, p: f"/api/v1/periods/{w.period}/remittances", lambda w, p: {
            "office": p.office, "amount": "1.00", "reference": "matrix", "remitted_at": TODAY.isoformat()}),
    ("enrollment", "GET /api/v1/periods/{period}/remittance-report"): get(
        lambda w, p: f"/api/v1/periods/{w.period}/remittance-report"),
    ("enrollment", "GET /api/v1/stats/periods"): get(lambda w, p: "/api/v1/stats/periods"),
    ("enrollment", "GET /api/v1/stats/periods/{period}/enrollment"): get(
        lambda w, p: f"/api/v1/stats/periods/{w.period}/enrollment"),
    ("claims", "GET /api/v1/stats/periods/{period}/claims"): get(lambda w, p: f"/api/v1/stats/periods/{w.period}/claims"),
    ("payments", "GET /api/v1/stats/periods/{period}/payments"): get(
        lambda w, p: f"/api/v1/stats/periods/{w.period}/payments"),
    ("enrollment", "POST /api/v1/periods/{code}/history"): send(  # the period is still open: 409 when allowed
        "POST", lambda w, p: f"/api/v1/periods/{w.period}/history", lambda w, p: {"members": []}),
    ("enrollment", "POST /api/v1/members/{member_id}/release"): send(  # released once: then 409
        "POST", lambda w, p: f"/api/v1/members/{p.member_id}/release", lambda w, p: {"reason": "matrix"}),
    ("enrollment", "POST /api/v1/members/{member_id}/reveal"): send(
        "POST", lambda w, p: f"/api/v1/members/{p.member_id}/reveal", lambda w, p: {"fields": ["phone"],
                                                                                   "reason": "matrix"}),
    ("claims", "GET /api/v1/claims/overdue"): get(lambda w, p: "/api/v1/claims/overdue"),
    ("claims", "POST /api/v1/settlements"): send("POST", lambda w, p: "/api/v1/settlements", lambda w, p: [
        {**plausible_settlement(), "certno": p.certno, "insutype": "310",
         "setl_time": f"{TODAY - timedelta(days=10)} 09:30:00"}]),
    ("claims", "POST /api/v1/settlements/totals"): send("POST", lambda w, p: "/api/v1/settlements/totals", lambda w, p: {
        "totals": [{"date": str(TODAY - timedelta(days=10)), "insutype": "310", "count": 1,
                    "medfee_sumamt": "15000.00", "psn_part_amt": "5000.00"}]}),
    ("claims", "GET /api/v1/settlements/totals"): get(lambda w, p: "/api/v1/settlements/totals",
                                                      date=lambda w, p: str(TODAY - timedelta(days=10))),
    ("claims", "GET /api/v1/settlements/unclaimed"): get(lambda w, p: "/api/v1/settlements/unclaimed",
                                                         unit=lambda w, p: p.unit),
    ("claims", "POST /api/v1/claims"): send(  # implausible on purpose: 422 once the caller may claim for them
        "POST", lambda w, p: "/api/v1/claims", lambda w, p: claim_body(p, {
            **plausible_settlement(), "psn_part_amt": "99999999.00"})),
    ("claims", "GET /api/v1/claims/{claim_id}"): get(lambda w, p: f"/api/v1/claims/{p.claim_id}"),
    ("claims", "GET /api/v1/claims"): get(lambda w, p: "/api/v1/claims", member_id=lambda w, p: p.member_id),
    ("claims", "GET /api/v1/claims.csv"): get(lambda w, p: "/api/v1/claims.csv", member_id=lambda w, p: p.member_id),
    ("claims", "GET /api/v1/review-queue"): get(lambda w, p: "/api/v1/review-queue"),
    ("claims", "POST /api/v1/claims/{claim_id}/decisions"): send(  # a rejection without a reason: 422
        "POST", lambda w, p: f"/api/v1/claims/{p.claim_id}/decisions", lambda w, p: {"decision": "reject"}),
    ("claims", "POST /api/v1/claims/{claim_id}/resubmission"): send(  # not returned: 409
        "POST", lambda w, p: f"/api/v1/claims/{p.claim_id}/resubmission", lambda w, p: {"note": "matrix"}),
    ("claims", "POST /api/v1/claims/{claim_id}/revocation"): send(
        "POST", lambda w, p: f"/api/v1/claims/{p.spare_claim_id}/revocation", lambda w, p: {"reason": "matrix"}),
    ("claims", "GET /api/v1/coverages"): get(lambda w, p: "/api/v1/coverages", member_id=lambda w, p: p.member_id),
    ("claims", "POST /api/v1/claims/{claim_id}/documents"): lambda w, p: (
        "POST", f"/api/v1/claims/{p.claim_id}/documents",
        {"files": {"file": ("card.jpg", jpeg(), "image/jpeg")}, "data": {"doc_type": "bank_card"}}),
    ("claims", "GET /api/v1/claims/{claim_id}/documents"): get(lambda w, p: f"/api/v1/claims/{p.claim_id}/documents"),
    ("claims", "GET /api/v1/claims/{claim_id}/documents/{document_id}"): get(
        lambda w, p: f"/api/v1/claims/{p.claim_id}/documents/{p.document_id}"),
    ("claims", "GET /api/v1/calendar/{year}"): get(lambda w, p: f"/api/v1/calendar/{TODAY.year}"),
    ("claims", "POST /api/v1/calendar/{year}"): send(  # a holiday of another year: 422
        "POST", lambda w, p: "/api/v1/calendar/2099", lambda w, p: {"holidays": [{"date": "2098-10-01"}]}),
    ("payments", "GET /api/v1/payment-instructions"): get(
        lambda w, p: "/api/v1/payment-instructions", claim_id=lambda w, p: p.claim_id),
    ("payments", "POST /api/v1/payment-instructions/{instruction_id}/confirm-hold"): send(
        "POST", lambda w, p: f"/api/v1/payment-instructions/{p.instruction_id}/confirm-hold",
        lambda w, p: {"reason": "matrix"}),
    ("payments", "POST /api/v1/payment-batches"): send(
        "POST", lambda w, p: "/api/v1/payment-batches", lambda w, p: {"format": "bank_csv"}),
    ("payments", "GET /api/v1/payment-batches"): get(lambda w, p: "/api/v1/payment-batches"),
    ("payments", "GET /api/v1/payment-batches/{batch_id}"): get(lambda w, p: f"/api/v1/payment-batches/{NOWHERE}"),
    ("payments", "POST /api/v1/payment-batches/{batch_id}/release"): send(
        "POST", lambda w, p: f"/api/v1/payment-batches/{NOWHERE}/release"),
    ("payments", "GET /api/v1/payment-batches/{batch_id}/file"): get(
        lambda w, p: f"/api/v1/payment-batches/{NOWHERE}/file"),
    ("payments", "POST /api/v1/payment-batches/{batch_id}/results"): send(
        "POST", lambda w, p: f"/api/v1/payment-batches/{NOWHERE}/results", lambda w, p: []),
    ("payments", "GET /api/v1/ledger/periods/{period}"): get(lambda w, p: f"/api/v1/ledger/periods/{w.period}"),
    ("payments", "GET /api/v1/ledger/periods/{period}/fees-reconciliation"): get(
        lambda w, p: f"/api/v1/ledger/periods/{w.period}/fees-reconciliation"),
    ("payments", "GET /api/v1/recoveries"): get(lambda w, p: "/api/v1/recoveries"),
    ("payments", "POST /api/v1/recoveries/{recovery_id}/receipts"): send(
        "POST", lambda w, p: f"/api/v1/recoveries/{NOWHERE}/receipts", lambda w, p: {
            "amount": "1.00", "reference": "matrix", "received_at": TODAY.isoformat()}),
    ("notifications", "GET /api/v1/me/notifications"): get(lambda w, p: "/api/v1/me/notifications"),
    ("notifications", "POST /api/v1/me/notifications/{notification_id}/read"): send(
        "POST", lambda w, p: f"/api/v1/me/notifications/{p.notification_id}/read"),
    ("notifications", "GET /api/v1/notifications"): get(
        lambda w, p: "/api/v1/notifications", member_id=lambda w, p: p.member_id),
    ("notifications", "GET /api/v1/staff/notifications"): get(lambda w, p: "/api/v1/staff/notifications"),
    ("notifications", "GET /api/v1/me/notification-preferences"): get(
        lambda w, p: "/api/v1/me/notification-preferences"),
    ("notifications", "PUT /api/v1/me/notification-preferences"): send(
        "PUT", lambda w, p: "/api/v1/me/notification-preferences", lambda w, p: {"sms": True, "email": True}),
    ("enrollment", "GET /api/v1/units/{unit}/members"): get(lambda w, p: f"/api/v1/units/{p.unit}/members"),
    ("enrollment", "GET /api/v1/units/{unit}/rosters"): get(lambda w, p: f"/api/v1/units/{p.unit}/rosters"),
    ("enrollment", "POST /api/v1/units/{unit}/member-accounts"): send(
        "POST", lambda w, p: f"/api/v1/units/{p.unit}/member-accounts", lambda w, p: {
            "member_id": p.member_id, "username": f"m-{uuid.uuid4().hex[:10]}", "password": "correct-horse-9"}),
    ("claims", "GET /api/v1/me/claims"): get(lambda w, p: "/api/v1/me/claims"),
    ("claims", "GET /api/v1/me/settlements"): get(lambda w, p: "/api/v1/me/settlements"),
}


# Answers that list the place's object when the caller may see it, and filter it out otherwise.
FILTERED: dict[tuple[str, str], Callable[[Place, Any], bool]] = {
    ("claims", "POST /api/v1/settlements"): lambda p, body: body["accepted"] == 1,
    ("claims", "GET /api/v1/review-queue"): lambda p, body: p.claim_id in {c["claim_id"] for c in body},
    ("claims", "GET /api/v1/claims"): lambda p, body: p.claim_id in {c["claim_id"] for c in body["items"]},
    ("claims", "GET /api/v1/claims.csv"): lambda p, body: p.claim_id in body,  # the CSV's text
    ("claims", "GET /api/v1/settlements/unclaimed"): lambda p, body: bool(body["items"]),
    ("enrollment", "GET /api/v1/members"): lambda p, body: [m["member_id"] for m in body] == [p.member_id],
    ("claims", "GET /api/v1/coverages"): lambda p, body: {c["member_id"] for c in body} == {p.member_id},
    ("payments", "GET /api/v1/payment-instructions"): lambda p, body: [i["claim_id"] for i in body] == [p.claim_id],
}


def empty(key: tuple[str, str], place: Place, body: Any) -> bool:
    """Whether an allowed answer holds nothing of the place's object (E rather than Y)."""
    holds = FILTERED.get(key)
    return holds is not None and not holds(place, body)


def outcome(key: tuple[str, str], place: Place, r: httpx.Response) -> str:
    assert r.status_code != 401 and r.status_code < 500, f"{key}: {r.status_code} {r.text[:300]}"
    if r.status_code in (403, 404):
        return "N"
    if r.status_code in (409, 422):
        return "Y"
    assert r.status_code in (200, 201), f"{key}: {r.status_code} {r.text[:300]}"
    if key in FILTERED and empty(key, place, r.json() if "json" in r.headers.get("content-type", "") else r.text):
        return "E"
    return "Y"


# One world for the whole module, rolled back after its last test; each cell's requests in a savepoint of it.
@pytest.fixture(scope="module")
async def world(rolled_back_module: ServiceClient, tmp_path_factory: pytest.TempPathFactory) -> World:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CLAIMS_DOCUMENTS_DIR", str(tmp_path_factory.mktemp("matrix-documents")))
        yield await build_world(rolled_back_module)  # type: ignore[misc]


# --- the tests --------------------------------------------------------------------------------------------
async def test_every_route_is_classified(rolled_back: ServiceClient) -> None:
    for name in SERVICES:
        app, _ = await rolled_back(name)
        served = {(name, r) for r in routes_of(app)}
        unclassified = served - set(MATRIX) - PUBLIC - SELF - ME
        assert not unclassified, f"routes without a row in the access matrix: {sorted(unclassified)}"
        stale = {k for k in set(MATRIX) | PUBLIC | SELF | ME if k[0] == name} - served
        assert not stale, f"rows for routes that no longer exist: {sorted(stale)}"
    assert set(MATRIX) == set(REQUESTS)
    for row in MATRIX.values():
        cells = row.split()
        assert len(cells) == len(ROLES) and all(len(c) == 2 and set(c) <= set("YEN") for c in cells)


@pytest.mark.parametrize("key", sorted(MATRIX), ids=lambda k: f"{k[0]}:{k[1]}")
async def test_the_access_matrix(world: World, key: tuple[str, str], rolled_back: ServiceClient) -> None:
    await rolled_back(key[0])  # what the cell's requests store is gone after it: every cell sees the same world
    expected = dict(zip(ROLES, MATRIX[key].split(), strict=True))
    client = world.clients[key[0]]
    got: dict[str, str] = {}
    for role in ROLES:
        cells = ""
        for place in (world.places["inside"], world.places[OUTSIDE[role]]):
            method, url, kwargs = REQUESTS[key](world, place)
            r = await client.request(method, url, headers=world.token(role), **kwargs)
            cells += outcome(key, place, r)
        got[role] = cells
    assert got == expected, f"{key}: expected {expected}, got {got}"


@pytest.mark.parametrize("key", sorted(PUBLIC), ids=lambda k: f"{k[0]}:{k[1]}")
async def test_public_routes_answer_without_a_token(rolled_back: ServiceClient, key: tuple[str, str]) -> None:
    _, client = await rolled_back(key[0])
    method, path = key[1].split(" ", 1)
    kwargs = {"data": {"username": "nobody-matrix", "password": "wrong-password"}} if "auth" in path else {}
    r = await client.request(method, path, **kwargs)
    assert r.status_code != 401 or r.json()["code"] == "bad_credentials", r.text  # no token asked for
    assert r.status_code < 500 or (path == "/readyz" and r.status_code == 503), r.text  # no broker in these tests


@pytest.mark.parametrize("key", sorted(SELF), ids=lambda k: f"{k[0]}:{k[1]}")
async def test_own_account_routes_need_a_token(rolled_back: ServiceClient, key: tuple[str, str]) -> None:
    _, client = await rolled_back(key[0])
    method, path = key[1].split(" ", 1)
    r = await client.request(method, path, json={"old_password": "x", "new_password": "y"})
    assert r.status_code == 401
