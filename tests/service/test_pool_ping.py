"""Pooled connections are checked only after they sat idle (shared/db.py ``ping_if_idle``, issue #15): one that
PostgreSQL dropped while it sat in the pool is replaced before a request sees it, and one back a moment ago is
handed out without a round trip."""

from __future__ import annotations

from sqlalchemy import text

from deploy.infra import Postgres
from shared.db import Database
from tests.conftest import fresh_database


async def _backend(db: Database) -> int:
    async with db.transaction() as session:
        return int((await session.execute(text("SELECT pg_backend_pid()"))).scalar_one())


async def _terminate(url: str, pid: int) -> None:
    other = Database(url, pool_size=1)
    try:
        async with other.transaction() as session:
            assert (await session.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})).scalar_one()
    finally:
        await other.dispose()


async def test_a_connection_dropped_while_idle_is_replaced_before_use(pg: Postgres) -> None:
    url = fresh_database(pg, "pool_ping_idle")
    db = Database(url, pool_size=1, idle_before_ping_s=0.0)  # every connection counts as idle: pinged
    try:
        first = await _backend(db)
        await _terminate(url, first)
        second = await _backend(db)
        assert second != first
    finally:
        await db.dispose()


async def test_a_connection_back_a_moment_ago_is_used_without_a_ping(pg: Postgres) -> None:
    url = fresh_database(pg, "pool_ping_fresh")
    db = Database(url, pool_size=1, idle_before_ping_s=60.0)
    pings = 0
    original = db.engine.dialect.do_ping

    def counting(dbapi_connection: object) -> bool:
        nonlocal pings
        pings += 1
        return original(dbapi_connection)

    db.engine.dialect.do_ping = counting  # type: ignore[method-assign]
    try:
        first = await _backend(db)  # a new connection: pinged once, on its first checkout
        assert pings == 1
        for _ in range(5):
            assert await _backend(db) == first
        assert pings == 1
    finally:
        await db.dispose()
