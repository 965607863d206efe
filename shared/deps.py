"""FastAPI dependency aliases shared by the services."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession


async def _session(request: Request) -> AsyncIterator[AsyncSession]:
    # ``async with``, not ``async for`` over a session generator: an error raised in the handler is thrown in
    # here, and only a context manager passes it on to ``Database.transaction`` at once. Through ``async for`` the
    # inner generator was left suspended and rolled back later by the garbage collector's ``aclose()`` task,
    # on a connection the next request might already be using.
    async with request.app.state.db.transaction() as session:
        yield session


# scope="function": the commit happens before the response is sent, so a 2xx means "stored".
SessionDep = Annotated[AsyncSession, Depends(_session, scope="function")]
