"""Enrollment over HTTP against a real PostgreSQL (docs/API.md "Enrollment (8001)"): login, organisations,
staff accounts, periods from rulebooks, rosters, fees, members, the outbox, and who may see what.

Each test runs in a transaction rolled back at its end (``rolled_back``, tests/conftest.py) and sees only its
own rows; it still makes its own organisations, periods, users and people (unique codes and ID numbers). The
one test sending two rosters at once commits on the shared database (``committed_world``)."""

from __future__ import annotations

import asyncio
import random
import re
import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from deploy.people import person
from services.enrollment.models import MESSAGING, AuditEntry
from shared.rulebook import load_rulebook
from tests.conftest import RULEBOOKS, ServiceClient, token_for

Headers = dict[str, str]
RNG = random.Random(uuid.uuid4().int)
USED_CERTNOS: set[str] = set()
TODAY = date.today()
CHINESE = re.compile(r"[\u4e00-\u9fff]")


def uid() -> str:
    return uuid.uuid4().hex[:6]


def people(n: int, member_type: str = "in_service") -> list[dict[str, Any]]:
    """Made-up people whose ID numbers are unique within this test session."""
    out: list[dict[str, Any]] = []
    while len(out) < n:
        p = person(RNG, member_type)
        if p["certno"] not in USED_CERTNOS:
            USED_CERTNOS.add(str(p["certno"]))
            out.append(p)
    return out


def iso(d: date) -> str:
    return d.isoformat()


def period_doc(source: str = "yunnan-18.yaml", *, previous: str | None = None, window_open: bool = True,
               member_types: list[str] | None = None) -> dict[str, Any]:
    """A rulebook file as a period with a fresh code whose enrolment window includes today (or has closed)."""
    doc = load_rulebook((RULEBOOKS / source).read_bytes()).to_document()
    enrol = (TODAY - timedelta(days=5), TODAY + timedelta(days=5)) if window_open else \
        (TODAY - timedelta(days=60), TODAY - timedelta(days=30))
    doc.update(code=f"{doc['code']}-{uid()}", previous_period=previous, windows={
        "enrolment": {"from": iso(enrol[0]), "to": iso(enrol[1])},
        "coverage": {"from": iso(TODAY + timedelta(days=10)), "to": iso(TODAY + timedelta(days=374))},
        "claims": {"from": iso(TODAY + timedelta(days=30)), "to": iso(TODAY + timedelta(days=555))},
    })
    if member_types is not None:
        doc["enrolment"]["member_types"] = member_types
    return doc


def roster_body(members: list[dict[str, Any]], *, total: int | None = None, in_service: int | None = None,
                basic: int | None = None) -> dict[str, Any]:
    n = sum(1 for m in members if m["member_type"] == "in_service")
    return {"staff": {"total": total or n, "in_service": in_service or n, "basic_insured_in_service": basic or n},
            "members": members}


def error_codes(body: dict[str, Any]) -> list[tuple[list[Any], str]]:
    return [(e["loc"], e["code"]) for e in body["errors"]]


@dataclass
class Tree:
    """centre -> office -> agency (unit, sibling) and other_agency (other_unit)."""

    centre: str
    office: str
    agency: str
    other_agency: str
    unit: str
    sibling: str
    other_unit: str

    def path(self, code: str) -> tuple[str, ...]:
        parent = {self.office: self.centre, self.agency: self.office, self.other_agency: self.office,
                  self.unit: self.agency, self.sibling: self.agency, self.other_unit: self.other_agency}
        return (*self.path(parent[code]), code) if code in parent else (code,)

    def agent(self, code: str) -> Headers:
        """A unit agent's token as login would issue it (no password hashing: quick)."""
        return token_for("unit_agent", org=code, org_path=self.path(code), org_level="unit")


@dataclass
class World:
    app: FastAPI
    client: httpx.AsyncClient
    admin: Headers
    tree: Tree
    period: str  # yunnan-18 rules, enrolment window open today

    async def submit(self, body: dict[str, Any], *, unit: str | None = None, period: str | None = None,
                     headers: Headers | None = None, **params: str) -> httpx.Response:
        return await self.client.post(f"/api/v1/periods/{period or self.period}/units/{unit or self.tree.unit}/rosters",
                                      json=body, headers=headers or self.admin, params=params)

    async def pay(self, roster_id: str, amount: str, headers: Headers | None = None,
                  paid_at: date = TODAY) -> httpx.Response:
        """A payment with the bank date ``paid_at`` (today by default: within an open period's window)."""
        finance = token_for("finance", org=self.tree.centre, org_path=(self.tree.centre,), org_level="centre")
        return await self.client.post(f"/api/v1/rosters/{roster_id}/payments", headers=headers or finance,
                                      json={"amount": amount, "reference": f"BANK-{uid()}", "paid_at": iso(paid_at)})

    async def find(self, certno: str, headers: Headers | None = None) -> list[dict[str, Any]]:
        r = await self.client.get("/api/v1/members", params={"certno": certno}, headers=headers or self.admin)
        assert r.status_code == 200, r.text
        return r.json()

    async def whole(self, certno: str, headers: Headers | None = None) -> dict[str, Any]:
        """A member as stored: found, then their personal data revealed on purpose (audited)."""
        [found] = await self.find(certno, headers)
        r = await self.client.post(f"/api/v1/members/{found['member_id']}/reveal", headers=headers or self.admin,
                                   json={"fields": ["certno", "phone", "bank_account"], "reason": "核对测试数据"})
        assert r.status_code == 200, r.text
        return {**found, **r.json()}

    async def new_period(self, doc: dict[str, Any]) -> str:
        r = await self.client.post("/api/v1/periods", json=doc, headers=self.admin)
        assert r.status_code == 201, r.text
        return str(doc["code"])

    async def account(self, role: str, org: str | None = None, member_id: str | None = None) -> Headers:
        """A real staff or member account, logged in over the API."""
        username, password = f"{role}-{uid()}", "correct-horse-battery"
        body: dict[str, Any] = {"username": username, "password": password, "role": role}
        if org is not None:
            body["org"] = org
        if member_id is not None:
            body["member_id"] = member_id
        r = await self.client.post("/api/v1/users", json=body, headers=self.admin)
        assert r.status_code == 201, r.text
        r = await self.client.post("/api/v1/auth/token", data={"username": username, "password": password})
        assert r.status_code == 200, r.text
        return {"Authorization": f"Bearer {r.json()['access_token']}"}

    async def outbox(self) -> list[dict[str, Any]]:
        async with self.app.state.db.transaction() as session:
            rows = (await session.execute(select(MESSAGING.outbox.c.type, MESSAGING.outbox.c.key,
                                                 MESSAGING.outbox.c.envelope).order_by(MESSAGING.outbox.c.seq))).all()
        return [{"type": t, "key": k, "payload": e["payload"]} for t, k, e in rows]

    async def outbox_count(self) -> int:
        async with self.app.state.db.transaction() as session:
            return int((await session.execute(select(func.count()).select_from(MESSAGING.outbox))).scalar_one())


async def build_tree(client: httpx.AsyncClient, admin: Headers) -> Tree:
    s = uid()
    t = Tree(centre=f"C{s}", office=f"C{s}-KM", agency=f"C{s}-KM-WH", other_agency=f"C{s}-KM-PL",
             unit=f"C{s}-KM-WH-001", sibling=f"C{s}-KM-WH-002", other_unit=f"C{s}-KM-PL-001")
    for code, level, parent in [(t.centre, "centre", None), (t.office, "office", t.centre),
                                (t.agency, "agency_point", t.office), (t.other_agency, "agency_point", t.office),
                                (t.unit, "unit", t.agency), (t.sibling, "unit", t.agency),
                                (t.other_unit, "unit", t.other_agency)]:
        r = await client.post("/api/v1/orgs", headers=admin,
                              json={"code": code, "name": f"{level} {code}", "level": level, "parent": parent})
        assert r.status_code == 201, r.text
    return t


async def admin_login(client: httpx.AsyncClient) -> Headers:
    r = await client.post("/api/v1/auth/token", data={"username": "admin", "password": "admin"})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


@pytest.fixture(scope="module")
async def admin(_clean_apps: ServiceClient) -> Headers:
    """The admin of rolled_back's database, logged in once per module (a login stores nothing)."""
    return await admin_login((await _clean_apps("enrollment"))[1])


async def new_world(make: ServiceClient, admin: Headers) -> World:
    app, client = await make("enrollment")
    tree = await build_tree(client, admin)
    w = World(app=app, client=client, admin=admin, tree=tree, period="")
    w.period = await w.new_period(period_doc())
    return w


@pytest.fixture
async def world(rolled_back: ServiceClient, admin: Headers) -> World:
    return await new_world(rolled_back, admin)


@pytest.fixture
async def committed_world(service_client: ServiceClient) -> World:
    """For tests that send requests at once: each needs its own connection, so they commit for real."""
    return await new_world(service_client, await admin_login((await service_client("enrollment"))[1]))


async def enrol(w: World, members: list[dict[str, Any]], *, unit: str | None = None,
                period: str | None = None) -> dict[str, Any]:
    r = await w.submit(roster_body(members), unit=unit, period=period)
    assert r.status_code == 201, r.text
    return r.json()


async def enrol_and_pay(w: World, members: list[dict[str, Any]], *, unit: str | None = None,
                        period: str | None = None) -> dict[str, Any]:
    roster = await enrol(w, members, unit=unit, period=period)
    r = await w.pay(roster["roster_id"], roster["fee_total"])
    assert r.status_code == 200 and r.json()["status"] == "active", r.text
    return r.json()


# --- login ----------------------------------------------------------------------------------------------
async def test_a_wrong_password_is_refused_in_chinese_with_bad_credentials(rolled_back: ServiceClient) -> None:
    _, client = await rolled_back("enrollment")
    for username in ("admin", f"nobody-{uid()}"):
        r = await client.post("/api/v1/auth/token", data={"username": username, "password": "not-the-password"})
        assert r.status_code == 401
        assert r.headers["content-type"].startswith("application/problem+json")
        body = r.json()
        assert body["code"] == "bad_credentials" and body["status"] == 401
        assert CHINESE.search(body["detail"]) and "access_token" not in body


async def test_a_token_from_login_opens_a_protected_endpoint(world: World) -> None:
    r = await world.client.post("/api/v1/auth/token", data={"username": "admin", "password": "admin"})
    assert r.status_code == 200
    token = r.json()
    assert token["token_type"] == "bearer" and token["expires_in"] > 0
    r = await world.client.get(f"/api/v1/orgs/{world.tree.unit}",
                               headers={"Authorization": f"Bearer {token['access_token']}"})
    assert r.status_code == 200 and r.json()["code"] == world.tree.unit
    assert (await world.client.get(f"/api/v1/orgs/{world.tree.unit}")).status_code == 401


# --- organisations -------------------------------------------------------------------------------------
async def test_the_admin_builds_a_centre_office_agency_point_unit_tree(world: World) -> None:
    t = world.tree
    r = await world.client.get(f"/api/v1/orgs/{t.unit}", headers=world.admin)
    assert r.status_code == 200
    assert r.json() == {"code": t.unit, "name": f"unit {t.unit}", "level": "unit", "parent": t.agency,
                        "path": [t.centre, t.office, t.agency, t.unit]}
    agency = (await world.client.get(f"/api/v1/orgs/{t.agency}", headers=world.admin)).json()
    assert agency["level"] == "agency_point" and agency["path"] == [t.centre, t.office, t.agency]


async def test_a_unit_directly_under_an_office_is_refused_naming_parent(world: World) -> None:
    code = f"U{uid()}"
    r = await world.client.post("/api/v1/orgs", headers=world.admin,
                                json={"code": code, "name": "某厂工会", "level": "unit", "parent": world.tree.office})
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    assert ["body", "parent"] in [e["loc"] for e in r.json()["errors"]]
    assert (await world.client.get(f"/api/v1/orgs/{code}", headers=world.admin)).status_code == 404


async def test_a_duplicate_org_code_is_a_conflict(world: World) -> None:
    r = await world.client.post("/api/v1/orgs", headers=world.admin,
                                json={"code": world.tree.unit, "name": "又一个", "level": "unit",
                                      "parent": world.tree.agency})
    assert r.status_code == 409 and r.json()["code"] == "org_exists"
    assert (await world.client.get(f"/api/v1/orgs/{world.tree.unit}", headers=world.admin)).json()["name"] == \
        f"unit {world.tree.unit}"


async def test_only_an_admin_may_create_an_organisation(world: World) -> None:
    t = world.tree
    reviewer = token_for("centre_reviewer", org=t.centre, org_path=(t.centre,), org_level="centre")
    code = f"U{uid()}"
    r = await world.client.post("/api/v1/orgs", headers=reviewer,
                                json={"code": code, "name": "某厂工会", "level": "unit", "parent": t.agency})
    assert r.status_code == 403 and r.json()["code"] == "role_not_allowed"
    assert (await world.client.get(f"/api/v1/orgs/{code}", headers=world.admin)).status_code == 404


# --- users ----------------------------------------------------------------------------------------------
async def test_a_reviewer_must_belong_to_an_org_of_its_level(world: World) -> None:
    r = await world.client.post("/api/v1/users", headers=world.admin, json={
        "username": f"office-{uid()}", "password": "correct-horse-battery", "role": "office_reviewer",
        "org": world.tree.unit})
    assert r.status_code == 422 and r.json()["code"] == "role_level_mismatch"
    assert r.json()["errors"][0]["loc"] == ["body", "org"]
    ok = await world.client.post("/api/v1/users", headers=world.admin, json={
        "username": f"office-{uid()}", "password": "correct-horse-battery", "role": "office_reviewer",
        "org": world.tree.office})
    assert ok.status_code == 201 and ok.json()["org"] == world.tree.office


async def test_a_member_account_needs_a_member(world: World) -> None:
    for extra in ({}, {"member_id": str(uuid.uuid4())}):
        r = await world.client.post("/api/v1/users", headers=world.admin, json={
            "username": f"member-{uid()}", "password": "correct-horse-battery", "role": "member", **extra})
        assert r.status_code == 422 and r.json()["code"] == "member_required"
        assert r.json()["errors"][0]["loc"] == ["body", "member_id"]


# --- periods --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", sorted(RULEBOOKS.glob("*.yaml")), ids=lambda p: p.name)
async def test_every_rulebook_file_posts_as_yaml_and_reads_back_unchanged(world: World, path: Path) -> None:
    code = f"{path.stem}-{uid()}"
    raw = re.sub(rb"^code: .*$", f"code: {code}".encode(), path.read_bytes(), count=1, flags=re.M)
    r = await world.client.post("/api/v1/periods", content=raw,
                                headers={**world.admin, "Content-Type": "application/yaml"})
    assert r.status_code == 201, r.text
    assert r.json()["code"] == code
    expected = load_rulebook(raw).to_document()
    got = await world.client.get(f"/api/v1/periods/{code}", headers=world.tree.agent(world.tree.unit))
    assert got.status_code == 200
    assert got.json()["windows"] == expected["windows"]
    assert got.json()["rulebook"] == expected


async def test_a_rulebook_with_a_bad_rate_is_refused_naming_the_key(world: World) -> None:
    code = f"yn-bad-{uid()}"
    raw = (RULEBOOKS / "yunnan-18.yaml").read_bytes()
    raw = re.sub(rb"^code: .*$", f"code: {code}".encode(), raw, count=1, flags=re.M)
    raw = raw.replace(b'rate: "0.30"', b'rate: "1.30"', 1)
    r = await world.client.post("/api/v1/periods", content=raw,
                                headers={**world.admin, "Content-Type": "application/yaml"})
    assert r.status_code == 422
    body = r.json()
    assert body["code"] == "invalid_rulebook" and CHINESE.search(body["detail"])
    assert [e["loc"] for e in body["errors"]] == [["body", "plans", 0, "bands", 0, "rate"]]
    assert "1.30" in body["errors"][0]["msg"]
    assert (await world.client.get(f"/api/v1/periods/{code}", headers=world.admin)).status_code == 404


async def test_a_rulebook_that_is_not_valid_yaml_is_refused_pointing_at_the_syntax_error(world: World) -> None:
    raw = (RULEBOOKS / "yunnan-18.yaml").read_bytes().replace(b"member_types: [in_service, retired]",
                                                               b"member_types: [in_service, retired", 1)
    r = await world.client.post("/api/v1/periods", content=raw,
                                headers={**world.admin, "Content-Type": "application/yaml"})
    assert r.status_code == 422 and r.json()["code"] == "invalid_rulebook"
    # The writer is shown where the syntax breaks, not told that every top-level key is missing.
    messages = [e["msg"] for e in r.json()["errors"]]
    assert len(messages) == 1 and "YAML" in messages[0] and "行" in messages[0], messages


async def test_a_duplicate_period_is_a_conflict(world: World) -> None:
    doc = period_doc()
    doc["code"] = world.period
    r = await world.client.post("/api/v1/periods", json=doc, headers=world.admin)
    assert r.status_code == 409 and r.json()["code"] == "period_exists"


# --- rosters --------------------------------------------------------------------------------------------
async def test_a_valid_roster_awaits_payment_of_150_per_new_member(world: World) -> None:
    r = await world.submit(roster_body(people(3)), headers=world.tree.agent(world.tree.unit))
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["status"] == "awaiting_payment" and body["members"] == 3 and body["fee_total"] == "450.00"
    stored = await world.client.get(f"/api/v1/rosters/{body['roster_id']}", headers=world.admin)
    assert stored.json() == {"roster_id": body["roster_id"], "period": world.period, "unit": world.tree.unit,
                             "status": "awaiting_payment", "members": 3, "fee_total": "450.00",
                             "paid_total": "0.00", "fee_split": None}


async def test_a_member_of_the_previous_period_renews_at_120(world: World) -> None:
    first, newcomer = people(2), people(1)
    await enrol_and_pay(world, first)
    nxt = await world.new_period(period_doc(previous=world.period))
    roster = await enrol(world, [first[0], *newcomer], period=nxt)
    assert roster["fee_total"] == "270.00"  # 120.00 renewal + 150.00 new


async def test_a_retiree_who_skipped_the_previous_period_may_not_join_when_retirees_must_renew(world: World) -> None:
    # yunnan-19 (seed 003 第一条, docs/DOMAIN.md): from the 19th period a retiree who skipped the previous one
    # may not join again; a retiree who was in it renews as usual.
    staying, workers = people(1, "retired")[0], people(2)
    await enrol_and_pay(world, [*workers, staying])
    nxt = await world.new_period(period_doc("yunnan-19.yaml", previous=world.period))
    renewing = await world.submit(roster_body([*workers, staying]), period=nxt)
    assert renewing.status_code == 201, renewing.text
    assert renewing.json()["fee_total"] == "360.00"
    returning = people(1, "retired")[0]
    r = await world.submit(roster_body([*people(2), returning]), period=nxt, unit=world.tree.sibling)
    assert r.status_code == 422, r.text
    assert [e["loc"][:2] for e in r.json()["errors"]] == [["members", 2]]
    assert await world.find(returning["certno"]) == []


async def test_a_roster_with_several_problems_is_refused_whole_listing_every_row(world: World) -> None:
    # A Yunnan rulebook for in-service staff only (as Yuncheng's), both insurances required.
    period = await world.new_period(period_doc(member_types=["in_service"]))
    ok, retiree = people(3), people(1, "retired")[0]
    bad_certno = dict(ok[1], certno=ok[1]["certno"][:-1] + ("1" if ok[1]["certno"][-1] != "1" else "2"))
    twin = dict(ok[2], certno=ok[0]["certno"])
    no_supplement = dict(people(1)[0], insurance=["basic_medical"])
    members = [ok[0], bad_certno, twin, retiree, no_supplement]
    before = await world.outbox_count()
    r = await world.submit(roster_body(members, total=40, in_service=40, basic=40), period=period)
    assert r.status_code == 422
    body = r.json()
    assert body["code"] == "roster_rejected" and CHINESE.search(body["detail"])
    assert error_codes(body) == [
        (["members", 1, "certno"], "invalid_certno"),
        (["members", 2, "certno"], "duplicate_person"),
        (["members", 3, "member_type"], "member_type_not_allowed"),
        (["members", 4, "insurance"], "required_insurance_missing"),
        (["staff"], "participation_ratio_too_low"),
    ]
    for valid in (ok[0], retiree, no_supplement):  # nothing of it was stored
        assert await world.find(valid["certno"]) == []
    assert await world.outbox_count() == before


async def test_a_person_enrolled_through_an_earlier_roster_of_the_unit_is_already_enrolled(world: World) -> None:
    shared_person, others = people(1)[0], people(2)
    await enrol(world, [shared_person])
    r = await world.submit(roster_body([*others, shared_person]))
    assert r.status_code == 422
    assert error_codes(r.json()) == [(["members", 2, "certno"], "already_enrolled")]
    assert await world.find(others[0]["certno"]) == []


async def test_a_roster_outside_the_enrolment_window_is_refused(world: World) -> None:
    closed = await world.new_period(period_doc(window_open=False))
    members = people(2)
    r = await world.submit(roster_body(members), period=closed, headers=world.tree.agent(world.tree.unit))
    assert r.status_code == 422
    assert error_codes(r.json()) == [(["window"], "outside_enrolment_window")]
    assert await world.find(members[0]["certno"]) == []


async def test_only_the_admin_may_enter_a_late_roster_and_only_with_a_reason(world: World) -> None:
    closed = await world.new_period(period_doc(window_open=False))
    members = people(2)
    agent = await world.submit(roster_body(members), period=closed, headers=world.tree.agent(world.tree.unit),
                               late_reason="纸质名单补录")
    assert agent.status_code == 403 and agent.json()["code"] == "late_entry_not_allowed"
    blank = await world.submit(roster_body(members), period=closed, late_reason="  ")
    assert blank.status_code == 403
    r = await world.submit(roster_body(members), period=closed, late_reason="补录本年度已缴费的纸质名单")
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "awaiting_payment" and r.json()["fee_total"] == "300.00"
    async with world.app.state.db.transaction() as session:
        audited = (await session.execute(select(AuditEntry).where(
            AuditEntry.action == "roster.late_entry", AuditEntry.subject == r.json()["roster_id"]))).scalars().all()
    assert [a.detail["reason"] for a in audited] == ["补录本年度已缴费的纸质名单"]


async def test_a_bank_account_failing_luhn_is_a_warning_not_a_refusal(world: World) -> None:
    passbook = people(1)[0]
    passbook["bank_account"] = passbook["bank_account"][:-1] + str((int(passbook["bank_account"][-1]) + 1) % 10)
    r = await world.submit(roster_body([*people(1), passbook]))
    assert r.status_code == 201, r.text
    warnings = r.json()["warnings"]
    assert [(w["loc"], w["code"]) for w in warnings] == [(["members", 1, "bank_account"], "bank_account_luhn")]
    assert CHINESE.search(warnings[0]["msg"])


# --- payments -------------------------------------------------------------------------------------------
async def test_a_partial_payment_keeps_the_roster_awaiting_payment(world: World) -> None:
    roster = await enrol(world, people(2))
    r = await world.pay(roster["roster_id"], "100.00", headers=world.tree.agent(world.tree.unit))
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "awaiting_payment" and r.json()["paid_total"] == "100.00"


async def test_paying_the_exact_total_covers_every_member_for_the_coverage_window(world: World) -> None:
    members = people(2)
    roster = await enrol(world, members)
    assert (await world.pay(roster["roster_id"], "100.00")).status_code == 200
    r = await world.pay(roster["roster_id"], "200.00")
    assert r.status_code == 200
    assert r.json()["status"] == "active" and r.json()["paid_total"] == "300.00"
    coverage = period_doc()["windows"]["coverage"]
    for m in members:
        [found] = await world.find(m["certno"])
        member = (await world.client.get(f"/api/v1/members/{found['member_id']}", headers=world.admin)).json()
        assert member["coverages"] == [{"period": world.period, "plan": "inpatient", "status": "covered",
                                        "roster_id": roster["roster_id"], "unit": world.tree.unit, "from": coverage["from"],
                                        "to": coverage["to"]}]


async def test_an_overpayment_is_refused(world: World) -> None:
    roster = await enrol(world, people(2))
    assert (await world.pay(roster["roster_id"], "100.00")).status_code == 200
    r = await world.pay(roster["roster_id"], "200.01")
    assert r.status_code == 422 and r.json()["code"] == "overpayment"
    stored = (await world.client.get(f"/api/v1/rosters/{roster['roster_id']}", headers=world.admin)).json()
    assert stored["status"] == "awaiting_payment" and stored["paid_total"] == "100.00"


async def test_paying_an_active_roster_is_a_conflict(world: World) -> None:
    roster = await enrol_and_pay(world, people(1))
    r = await world.pay(roster["roster_id"], "1.00")
    assert r.status_code == 409 and r.json()["code"] == "roster_already_paid"
    stored = (await world.client.get(f"/api/v1/rosters/{roster['roster_id']}", headers=world.admin)).json()
    assert stored["paid_total"] == "150.00"


# --- outbox ---------------------------------------------------------------------------------------------
async def test_an_active_roster_leaves_one_covered_event_per_member_in_the_outbox(world: World) -> None:
    members = people(3)
    await enrol_and_pay(world, members)
    mine = await world.outbox()  # the test's own events, all of them
    assert [e["type"] for e in mine] == ["period.published", "roster.fees_received"] + ["member.covered"] * 3
    covered = [e for e in mine if e["type"] == "member.covered"]
    assert sorted(e["payload"]["certno"] for e in covered) == sorted(m["certno"] for m in members)
    assert len({e["key"] for e in covered}) == 3
    assert all(e["payload"]["unit_path"] == list(world.tree.path(world.tree.unit)) for e in covered)
    assert [e["key"] for e in mine if e["type"] == "period.published"] == [world.period]


async def test_a_refused_roster_adds_nothing_to_the_outbox(world: World) -> None:
    before = await world.outbox_count()
    r = await world.submit(roster_body(people(3), total=20, in_service=20, basic=20))
    assert r.status_code == 422
    assert await world.outbox_count() == before


# --- subtree and masking --------------------------------------------------------------------------------
async def test_a_unit_agent_of_another_unit_may_neither_submit_nor_read_this_units_members(world: World) -> None:
    t = world.tree
    member = people(1)[0]
    await enrol(world, [member])
    [found] = await world.find(member["certno"])
    stranger = await world.account("unit_agent", t.sibling)
    r = await world.submit(roster_body(people(1)), headers=stranger)
    assert r.status_code == 403 and r.json()["code"] == "outside_subtree"
    r = await world.client.get(f"/api/v1/members/{found['member_id']}", headers=stranger)
    assert r.status_code == 403
    assert await world.find(member["certno"], stranger) == []


async def test_an_agency_reviewer_of_another_branch_finds_nobody(world: World) -> None:
    member = people(1)[0]
    await enrol(world, [member])
    other = await world.account("agency_reviewer", world.tree.other_agency)
    assert await world.find(member["certno"], other) == []


async def test_the_agency_reviewer_and_the_unit_agent_see_personal_data_masked(world: World) -> None:
    member = people(1)[0]
    await enrol(world, [member])
    reviewer = await world.account("agency_reviewer", world.tree.agency)
    agent = await world.account("unit_agent", world.tree.unit)
    c, phone, account = member["certno"], member["phone"], member["bank_account"]
    [masked] = await world.find(c, reviewer)
    assert masked["certno"] == c[:6] + "*" * 8 + c[-4:]
    assert masked["phone"] == phone[:3] + "****" + phone[-4:]
    assert masked["bank_account"] == account[:4] + "*" * (len(account) - 8) + account[-4:]
    assert masked["name"] == member["name"] and masked["unit"] == world.tree.unit
    [theirs] = await world.find(c, agent)  # issue #9: the unit agent too; whole only by an audited reveal
    assert (theirs["certno"], theirs["phone"], theirs["bank_account"]) == \
        (masked["certno"], masked["phone"], masked["bank_account"])
    whole = await world.whole(c, agent)
    assert (whole["certno"], whole["phone"], whole["bank_account"]) == (c, phone, account)


async def test_a_member_account_sees_only_themselves(world: World) -> None:
    me, neighbour = people(2)
    await enrol_and_pay(world, [me, neighbour])
    [mine] = await world.find(me["certno"])
    [theirs] = await world.find(neighbour["certno"])
    member = await world.account("member", member_id=mine["member_id"])
    r = await world.client.get(f"/api/v1/members/{mine['member_id']}", headers=member)
    assert r.status_code == 200
    assert r.json()["certno"] == mine["certno"] != me["certno"]  # masked for the member too
    assert r.json()["coverages"][0]["status"] == "covered"
    r = await world.client.get(f"/api/v1/members/{theirs['member_id']}", headers=member)
    assert r.status_code == 403 and r.json()["code"] == "not_yourself"
    assert await world.find(neighbour["certno"], member) == []


async def test_a_members_login_names_their_member_record_and_staff_logins_none(world: World) -> None:
    # So a member app (and the README's curl walk-through) can read GET /api/v1/members/{member_id} at once.
    me = people(1)[0]
    await enrol_and_pay(world, [me])
    [mine] = await world.find(me["certno"])
    username = f"member-{uid()}"
    r = await world.client.post("/api/v1/users", headers=world.admin, json={
        "username": username, "password": "correct-horse-battery", "role": "member", "member_id": mine["member_id"]})
    assert r.status_code == 201, r.text
    login = await world.client.post("/api/v1/auth/token", data={"username": username,
                                                                 "password": "correct-horse-battery"})
    assert (login.json()["role"], login.json()["member_id"]) == ("member", mine["member_id"])
    admin = await world.client.post("/api/v1/auth/token", data={"username": "admin", "password": "admin"})
    assert admin.json()["member_id"] is None


# Two units enrol the same person at the same moment: one share per person holds (第四条) even when neither
# roster can see the other's uncommitted rows: the second waits on the key, then is refused, whole.
async def test_the_same_person_in_two_rosters_sent_at_once_is_enrolled_once(committed_world: World) -> None:
    world = committed_world  # two requests at once, each on its own connection: no shared transaction
    shared_person, *others = people(3)
    first = roster_body([shared_person, others[0]])
    second = roster_body([shared_person, others[1]])
    answers = await asyncio.gather(world.submit(first, unit=world.tree.unit),
                                   world.submit(second, unit=world.tree.sibling))
    statuses = sorted(r.status_code for r in answers)
    # Which one wins is a race: the loser sees the winner's committed enrolment (422 already_enrolled) or
    # waits on its uncommitted key and then fails it (409 concurrent_enrolment).
    assert statuses in ([201, 409], [201, 422]), [r.text for r in answers]
    refused = next(r for r in answers if r.status_code != 201).json()
    assert refused["code"] == {409: "concurrent_enrolment", 422: "roster_rejected"}[statuses[1]]
    found = await world.find(str(shared_person["certno"]))
    assert len([c for c in found[0]["coverages"] if c["period"] == world.period]) == 1
    # The refused roster stored nobody: its other person is unknown.
    loser_other = others[1] if answers[0].status_code == 201 else others[0]
    assert await world.find(str(loser_other["certno"])) == []


async def test_names_with_backslashes_quotes_and_commas_are_stored_as_written(world: World) -> None:
    members = people(2)
    members[0]["name"] = '王\\小"明,二'
    members[1]["bank_name"] = "中国银行\\昆明,分行"
    await enrol(world, members)
    assert (await world.find(str(members[0]["certno"])))[0]["name"] == '王\\小"明,二'
    found = await world.find(str(members[1]["certno"]))
    assert found[0]["bank_name"] == "中国银行\\昆明,分行"


async def test_a_member_moving_units_keeps_one_record_and_their_history(world: World) -> None:
    mover, colleague = people(2)
    await enrol_and_pay(world, [mover, colleague], unit=world.tree.unit)
    before = (await world.find(str(mover["certno"])))[0]
    nxt = await world.new_period(period_doc(previous=world.period))
    r = await world.client.post(f"/api/v1/members/{before['member_id']}/release",
                                headers=world.tree.agent(world.tree.unit), json={"reason": "调入同一代办点的另一单位"})
    assert r.status_code == 200, r.text  # issue #9: only a recorded release (or the period's rules) moves them
    roster = await enrol(world, [mover], unit=world.tree.sibling, period=nxt)
    assert roster["fee_total"] == "120.00"  # still a renewing member after the move
    after = (await world.find(str(mover["certno"])))[0]
    assert after["member_id"] == before["member_id"] and after["unit"] == world.tree.sibling
    assert [(c["period"], c["unit"], c["status"]) for c in after["coverages"]] == [
        (world.period, world.tree.unit, "covered"), (nxt, world.tree.sibling, "pending")]
