"""The reference for the claims-over-HTTP bench (issue 15): an empty-handler FastAPI endpoint served the way the
services are served (``shared.service.serve``: uvicorn, uvloop and httptools as installed, no access log), taking
the same JSON body and answering a small JSON document with a response model. What the bench measures against it
is the budget of the machine, the server and the client; the claims service's rate over this one is the share of
it the claim work leaves. Usage: ``python -m bench.empty_app PORT``."""

from __future__ import annotations

import sys
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

app = FastAPI(docs_url=None, redoc_url=None)


class Accepted(BaseModel):
    claim_id: str
    status: str


@app.post("/api/v1/claims", status_code=201, response_model=Accepted)
async def submit(body: dict[str, Any]) -> dict[str, str]:
    return {"claim_id": str(body.get("member_id", "")), "status": "in_review"}


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_config=None, access_log=False,
                timeout_graceful_shutdown=5)
