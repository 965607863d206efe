"""FastAPI dependency aliases shared by the services."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession


async def _session(request: Request) -> AsyncIterator[AsyncSession]:
    async for session in request.app.state.db.session():
        yield session


# scope="function": the commit happens before the response is sent, so a 2xx means "stored".
SessionDep = Annotated[AsyncSession, Depends(_session, scope="function")]
