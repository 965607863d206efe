"""What ``rolled_back`` keeps apart (tests/conftest.py): the shared database where ``service_client`` commits is
not the one rolled-back tests see, and inside ``rolled_back_module`` each test is a savepoint of the module's
world. The tests run in file order: the last checks what the one before stored."""

from __future__ import annotations

import uuid

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from tests.conftest import ServiceClient, token_for

ADMIN = token_for("admin")
STORED: dict[str, str] = {}


async def new_centre(client: httpx.AsyncClient, name: str) -> str:
    code = f"RS{uuid.uuid4().hex[:8]}"
    r = await client.post("/api/v1/orgs", json={"code": code, "name": name, "level": "centre"}, headers=ADMIN)
    assert r.status_code == 201, r.text
    return code


async def centres(app: FastAPI) -> list[str]:
    async with app.state.db.transaction() as session:
        return sorted((await session.execute(text("SELECT code FROM orgs WHERE level = 'centre'"))).scalars())


async def test_what_a_committed_test_stores_is_not_seen_by_a_rolled_back_one(
        service_client: ServiceClient, rolled_back: ServiceClient) -> None:
    app, shared = await service_client("enrollment")
    committed = await new_centre(shared, "已提交中心")
    assert committed in await centres(app)
    clean, _ = await rolled_back("enrollment")
    assert await centres(clean) == []  # no centre at all: the rolled-back database holds only this test's rows


@pytest.fixture(scope="module")
async def module_world(rolled_back_module: ServiceClient) -> str:
    _, client = await rolled_back_module("enrollment")
    return await new_centre(client, "模块中心")


async def test_a_test_inside_the_module_world_sees_it_and_adds_to_it(module_world: str,
                                                                    rolled_back: ServiceClient) -> None:
    app, client = await rolled_back("enrollment")
    STORED["cell"] = await new_centre(client, "单元中心")
    assert await centres(app) == sorted([module_world, STORED["cell"]])


async def test_the_next_test_sees_the_module_world_without_what_the_last_one_added(
        module_world: str, rolled_back: ServiceClient) -> None:
    assert "cell" in STORED
    app, _ = await rolled_back("enrollment")
    assert await centres(app) == [module_world]
