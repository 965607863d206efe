"""The ``rolled_back`` fixture (tests/conftest.py): a test's writes, through the app's own sessions and commits,
are gone after it, while inside it the app's commit and rollback behave as in production. The two tests run in
file order: the second checks what the first stored."""

from __future__ import annotations

import uuid

from tests.conftest import ServiceClient, token_for

ADMIN = token_for("admin")
STORED: list[str] = []  # the code of the centre the first test stored


async def test_inside_the_test_commits_and_refusals_work_as_in_production(rolled_back: ServiceClient) -> None:
    _, client = await rolled_back("enrollment")
    code = f"RB{uuid.uuid4().hex[:8]}"
    r = await client.post("/api/v1/orgs", json={"code": code, "name": "回滚中心", "level": "centre"}, headers=ADMIN)
    assert r.status_code == 201, r.text
    # A refused request rolls back its own savepoint only: the centre stored before is still there.
    r = await client.post("/api/v1/orgs", json={"code": code, "name": "again", "level": "centre"}, headers=ADMIN)
    assert r.status_code == 409 and r.json()["code"] == "org_exists"
    r = await client.get(f"/api/v1/orgs/{code}", headers=ADMIN)
    assert r.status_code == 200 and r.json()["name"] == "回滚中心"
    STORED.append(code)


async def test_after_the_test_nothing_it_stored_remains(rolled_back: ServiceClient) -> None:
    assert len(STORED) == 1
    _, client = await rolled_back("enrollment")
    r = await client.get(f"/api/v1/orgs/{STORED[0]}", headers=ADMIN)
    assert r.status_code == 404
