"""Idempotent HTTP commands: a write sent again with the same ``Idempotency-Key`` header gets the first
answer back instead of being done twice (docs/ARCHITECTURE.md "Idempotent commands").

The mobile union app retries on a flaky network: without this, a retried roster payment or claim would be
stored twice. The key row is inserted in the request's own transaction, together with the response, so the
command and its remembered answer commit together; a concurrent duplicate waits on the key's unique index and
then replays. A failed command (any error) stores nothing, so it may be retried with the same key.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar

from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, func, select
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncSession

from shared.auth import current_principal
from shared.errors import Invalid

HEADER = "Idempotency-Key"
P = ParamSpec("P")
R = TypeVar("R")


def idempotency_table(metadata: MetaData) -> Table:
    return Table(
        "idempotency_keys",
        metadata,
        Column("owner", String(60), primary_key=True),  # the caller: keys are per user
        Column("key", String(200), primary_key=True),
        Column("fingerprint", String(64), nullable=False),  # method, path and body of the first request
        Column("status", Integer, nullable=False),
        Column("response", JSONB, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    )


def idempotent(table: Table, status: int = 200) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[Any]]]:
    """Decorate an endpoint that takes ``request: Request`` and ``session: SessionDep`` keyword arguments."""

    def decorate(endpoint: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[Any]]:
        @functools.wraps(endpoint)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
            request = kwargs["request"]
            session = kwargs["session"]
            assert isinstance(request, Request) and isinstance(session, AsyncSession)
            key = request.headers.get(HEADER)
            if not key:
                return await endpoint(*args, **kwargs)
            if len(key) > 200:
                raise Invalid("Idempotency-Key 最长 200 个字符。", code="idempotency_key_too_long",
                              errors=[{"loc": ["header", HEADER], "msg": "过长"}])
            owner = current_principal(request).user_id
            body = await request.body()
            fingerprint = hashlib.sha256(
                request.method.encode() + b" " + request.url.path.encode() + b"\n" + body).hexdigest()
            claimed = await session.execute(
                insert(table).values(owner=owner, key=key, fingerprint=fingerprint, status=0, response={})
                .on_conflict_do_nothing().returning(table.c.key))
            if claimed.first() is None:
                stored = (await session.execute(select(table).where(table.c.owner == owner, table.c.key == key))).one()
                if stored.fingerprint != fingerprint:
                    raise Invalid("同一个 Idempotency-Key 已用于另一个不同的请求。", code="idempotency_key_reused",
                                  errors=[{"loc": ["header", HEADER], "msg": "已用于不同的请求"}])
                return JSONResponse(stored.response, status_code=stored.status, headers={"Idempotent-Replayed": "true"})
            result = await endpoint(*args, **kwargs)
            await session.execute(table.update().where(table.c.owner == owner, table.c.key == key)
                                  .values(status=status, response=jsonable_encoder(result)))
            return result

        return wrapper

    return decorate
