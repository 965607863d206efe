"""The request's session dependency (shared/deps.py): the handler's error reaches the transaction at once, so
the session rolls back inside the request, before the answer goes out. It used to wrap ``Database.session()``
in ``async for``: the error left that generator suspended, and the garbage collector's ``aclose()`` rolled it
back later (seeing GeneratorExit, not the error) on a connection the next request could already be using."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI, HTTPException

from shared.deps import SessionDep


class RecordingDatabase:
    """``Database.transaction``'s shape: commit when the body returns, roll back on any error."""

    def __init__(self) -> None:
        self.log: list[str] = []

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[object]:
        self.log.append("begin")
        try:
            yield object()
            self.log.append("commit")
        except BaseException as exc:
            self.log.append(f"rollback after {type(exc).__name__}")
            raise


def app_with(db: RecordingDatabase) -> FastAPI:
    app = FastAPI()
    app.state.db = db

    @app.post("/refused")
    async def refused(session: SessionDep) -> None:
        raise HTTPException(status_code=409, detail="conflict")

    @app.post("/stored")
    async def stored(session: SessionDep) -> dict[str, str]:
        return {"status": "stored"}

    return app


async def test_a_refused_request_rolls_back_with_its_own_error_before_it_is_answered() -> None:
    db = RecordingDatabase()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app_with(db)), base_url="http://t") as client:
        r = await client.post("/refused")
        assert r.status_code == 409
        assert db.log == ["begin", "rollback after HTTPException"]


async def test_a_request_that_succeeds_commits_before_it_is_answered() -> None:
    db = RecordingDatabase()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app_with(db)), base_url="http://t") as client:
        r = await client.post("/stored")
        assert r.status_code == 200
        assert db.log == ["begin", "commit"]
