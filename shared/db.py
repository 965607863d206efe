"""Async SQLAlchemy with one commit point.

A request gets one session from :func:`Database.session`; it commits once when the handler returns and
rolls back on any error, so a state change and the outbox rows it queued are stored together or not at all.
Workers (relay, consumers, sweepers) use :meth:`Database.transaction` the same way.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import MetaData, event, text
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def new_metadata() -> MetaData:
    return MetaData(naming_convention=NAMING)


# A pooled connection unused this long is checked (a round trip) before it is handed out; one back sooner is
# handed out as it is. SQLAlchemy's ``pool_pre_ping`` checked every one with three round trips (BEGIN, a ping,
# ROLLBACK), on every request and every poll of every worker (issue #15). A connection that died while in use
# (PostgreSQL restarted under load) fails that one statement; SQLAlchemy then discards every pooled connection
# made before it, so the next checkout opens a fresh one.
IDLE_BEFORE_PING_S = 2.0


def ping_if_idle(engine: AsyncEngine, idle_s: float = IDLE_BEFORE_PING_S) -> None:
    """Pessimistic disconnect handling for connections that sat in the pool (the checkout event raising
    ``DisconnectionError`` makes the pool drop it and take or open another)."""

    @event.listens_for(engine.sync_engine, "checkin")
    def stamp(dbapi_connection: Any, record: Any) -> None:
        record.info["checked_in_at"] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def ping(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        last = record.info.get("checked_in_at")
        if last is not None and time.monotonic() - last < idle_s:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:
            raise DisconnectionError(f"pooled connection is gone: {type(exc).__name__}") from exc


class Database:
    def __init__(self, url: str, pool_size: int = 10, idle_before_ping_s: float = IDLE_BEFORE_PING_S) -> None:
        self.url = url
        self.engine: AsyncEngine = create_async_engine(url, pool_size=pool_size, max_overflow=pool_size)
        ping_if_idle(self.engine, idle_before_ping_s)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        async with self.sessions() as session:
            try:
                yield session
                await session.commit()
            except BaseException:
                await session.rollback()
                raise

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()


def utcnow() -> datetime:
    """Python-side timestamp default, so a freshly flushed row can be read without a reload."""
    return datetime.now(UTC)


async def driver_connection(session: AsyncSession) -> Any:
    """The asyncpg connection under ``session``, inside the session's transaction, for COPY and bulk statements.
    SQLAlchemy's asyncpg adapter sends BEGIN only with its own first statement, so one goes through the session
    first: else the driver's work would commit at once and outlive a rollback (a refused payment cut would leave its
    lines batched; a bureau feed cut off half-way would keep its first batches)."""
    await session.execute(text("SELECT 1"))
    raw = (await (await session.connection()).get_raw_connection()).driver_connection
    assert raw is not None
    return raw
