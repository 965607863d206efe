"""A unit's members and rosters for its staff (services/enrollment/staff_lists.py): search by name or the last
digits of the ID number, keyset pages, masked data, the caller's branch only (whole path segments)."""

from __future__ import annotations

import random
import uuid
from datetime import date
from typing import Any

import httpx

from deploy.people import person
from tests.conftest import ServiceClient, token_for
from tests.service.test_access_matrix import period_doc

NAMES = ["吉𠮷", "王䶮", "阿依古丽·买买提", "张伟", "张伟", "李建华", "赵敏"]
ADMIN = token_for("admin")


async def unit_with_members(client: httpx.AsyncClient) -> tuple[list[str], str, list[dict[str, Any]], list[str]]:
    s = uuid.uuid4().hex[:5].upper()
    path = [f"SL{s}", f"SL{s}-O1", f"SL{s}-O1-A1", f"SL{s}-O1-A1-U1"]
    levels = ("centre", "office", "agency_point", "unit")
    # A neighbour whose code merely starts with the unit's: never in its branch.
    for depth, code in enumerate([*path, f"{path[2]}-U10"]):
        r = await client.post("/api/v1/orgs", headers=ADMIN, json={
            "code": code, "name": f"工会 {code}", "level": levels[min(depth, 3)],
            "parent": path[depth - 1] if 0 < depth < 4 else (path[2] if depth == 4 else None)})
        assert r.status_code == 201, r.text
    period = f"sl-{s.lower()}"
    assert (await client.post("/api/v1/periods", json=period_doc(period), headers=ADMIN)).status_code == 201
    rng = random.Random(s)
    people = [{**person(rng), "name": n} for n in NAMES]
    rosters = []
    for batch in (people[:4], people[4:]):
        r = await client.post(f"/api/v1/periods/{period}/units/{path[3]}/rosters", headers=ADMIN, json={
            "staff": {"total": len(batch), "in_service": len(batch), "basic_insured_in_service": len(batch)},
            "members": batch})
        assert r.status_code == 201, r.text
        rosters.append(r.json()["roster_id"])
    r = await client.post(f"/api/v1/rosters/{rosters[0]}/payments", headers=ADMIN, json={
        "amount": "600.00", "reference": "工行回单 0001", "paid_at": date.today().isoformat()})
    assert r.status_code == 200, r.text
    return path, period, people, rosters


def agent(path: list[str]) -> dict[str, str]:
    return token_for("unit_agent", path[3], tuple(path), "unit")


async def all_pages(client: httpx.AsyncClient, url: str, headers: dict[str, str], **params: Any) -> list[list[Any]]:
    pages, cursor = [], None
    while True:
        r = await client.get(url, headers=headers, params={**params, **({"cursor": cursor} if cursor else {})})
        assert r.status_code == 200, r.text
        body = r.json()
        pages.append(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages
        assert len(pages) < 20


async def test_an_agent_pages_through_the_units_members_masked_and_in_name_order(
        rolled_back: ServiceClient) -> None:
    _, client = await rolled_back("enrollment")
    path, period, people, _ = await unit_with_members(client)
    pages = await all_pages(client, f"/api/v1/units/{path[3]}/members", agent(path), limit=3)
    assert [len(p) for p in pages] == [3, 3, 1]
    rows = [row for page in pages for row in page]
    assert len({r["member_id"] for r in rows}) == len(NAMES)  # none twice, none skipped
    assert sorted(r["name"] for r in rows) == sorted(NAMES)
    certnos = {str(p["certno"]) for p in people}
    for row in rows:
        assert row["certno"] not in certnos and "*" in row["certno"] and "****" in row["phone"]
        assert "bank_account" not in row

    covered = (await client.get(f"/api/v1/units/{path[3]}/members", headers=agent(path),
                                params={"period": period})).json()["items"]
    status = {r["name"]: r["status"] for r in covered}
    assert status["吉𠮷"] == "covered" and status["赵敏"] == "pending" and covered[0]["period"] == period


async def test_search_by_part_of_a_name_or_the_last_digits_of_the_id_number(rolled_back: ServiceClient) -> None:
    _, client = await rolled_back("enrollment")
    path, _, people, _ = await unit_with_members(client)
    url, headers = f"/api/v1/units/{path[3]}/members", agent(path)
    found = (await client.get(url, headers=headers, params={"q": "𠮷"})).json()["items"]
    assert [r["name"] for r in found] == ["吉𠮷"]
    found = (await client.get(url, headers=headers, params={"q": "·买"})).json()["items"]
    assert [r["name"] for r in found] == ["阿依古丽·买买提"]
    assert len((await client.get(url, headers=headers, params={"q": "张伟"})).json()["items"]) == 2
    target = people[5]
    tail = str(target["certno"])[-4:]
    found = (await client.get(url, headers=headers, params={"q": tail.lower()})).json()["items"]
    assert "李建华" in [r["name"] for r in found]
    assert all(r["certno"].endswith(tail.upper()) for r in found)
    # A LIKE wildcard is a plain character here.
    assert (await client.get(url, headers=headers, params={"q": "%"})).json()["items"] == []


async def test_the_rosters_newest_first_a_page_at_a_time(rolled_back: ServiceClient) -> None:
    _, client = await rolled_back("enrollment")
    path, period, _, rosters = await unit_with_members(client)
    pages = await all_pages(client, f"/api/v1/units/{path[3]}/rosters", agent(path), limit=1, period=period)
    assert [[r["roster_id"] for r in p] for p in pages] == [[rosters[1]], [rosters[0]]]
    assert pages[1][0]["status"] == "active" and pages[1][0]["paid_total"] == "600.00"
    assert pages[0][0]["status"] == "awaiting_payment" and pages[0][0]["members"] == 3
    office = token_for("office_reviewer", path[1], tuple(path[:2]), "office")
    r = await client.get(f"/api/v1/units/{path[3]}/rosters", headers=office, params={"period": "nope"})
    assert r.status_code == 200 and r.json() == {"items": [], "next_cursor": None}


async def test_outside_the_branch_a_member_the_bureau_and_bad_cursors_are_refused(
        rolled_back: ServiceClient) -> None:
    _, client = await rolled_back("enrollment")
    path, _, _, _ = await unit_with_members(client)
    neighbour = [*path[:3], f"{path[2]}-U10"]  # U10 is not U1's branch, nor U1 U10's
    for url in (f"/api/v1/units/{path[3]}/members", f"/api/v1/units/{path[3]}/rosters"):
        r = await client.get(url, headers=agent(neighbour))
        assert r.status_code == 403 and r.json()["code"] == "outside_subtree"
        for role in ("member", "bureau"):
            assert (await client.get(url, headers=token_for(role, path[3], tuple(path), "unit"))).status_code == 403
        r = await client.get(url, headers=agent(path), params={"cursor": "not-a-cursor"})
        assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["query", "cursor"]
        r = await client.get(url, headers=agent(path), params={"limit": 0})
        assert r.status_code == 422
    r = await client.get(f"/api/v1/units/{path[2]}/members", headers=ADMIN)  # an agency point is not a unit
    assert r.status_code == 404 and r.json()["code"] == "unit_not_found"
