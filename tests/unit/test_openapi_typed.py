"""Every service's OpenAPI document says what comes back (issue #10 "Typed API"): each JSON answer has a response
schema, files and /metrics declare their media types, and every API route declares its problem+json errors, so a
mobile team can generate a client from the documents alone.

Built from the apps' own ``openapi()``: no database and no broker are needed to read a document.
"""

from __future__ import annotations

import importlib
from typing import Any

import pytest

from services.dashboard.app import create_app as dashboard_app
from services.dashboard.settings import DashboardSettings
from shared.db import Database
from shared.errors import PROBLEM_JSON
from shared.service import create_app
from shared.settings import SETTINGS_BY_SERVICE

SERVICES = ["enrollment", "claims", "payments", "notifications", "dashboard"]
METHODS = ("get", "post", "put", "patch", "delete")



def openapi(service: str) -> dict[str, Any]:
    if service == "dashboard":
        return dashboard_app(DashboardSettings(local_stack=True)).openapi()
    settings = SETTINGS_BY_SERVICE[service](local_stack=True)
    spec = importlib.import_module(f"services.{service}.app").spec(settings)
    return create_app(spec, Database("postgresql+asyncpg://u@127.0.0.1:1/none"), run_workers=False).openapi()


def described(schema: dict[str, Any]) -> bool:
    """A schema that names its fields: a model ($ref), an object with properties, a list or map of described
    items; not ``{}`` nor a bare ``dict``/``list`` (what a handler returning ``dict`` yields)."""
    if "$ref" in schema:
        return True
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            return all(described(s) or s.get("type") == "null" for s in schema[key])
    kind = schema.get("type")
    if kind == "array":
        return described(schema.get("items") or {})
    if kind == "object":
        extra = schema.get("additionalProperties")
        return bool(schema.get("properties")) or (isinstance(extra, dict) and described(extra))
    return kind in ("string", "integer", "number", "boolean")


def untyped(document: dict[str, Any]) -> list[str]:
    """Each route whose success answer has no schema (JSON) or no media type (anything else), or, under /api,
    which declares no problem+json error."""
    faults = []
    for path, operations in document["paths"].items():
        for method in METHODS:
            operation = operations.get(method)
            if operation is None:
                continue
            name = f"{method.upper()} {path}"
            responses = operation.get("responses", {})
            successes = {code: r for code, r in responses.items() if code.startswith("2")}
            if not successes:
                faults.append(f"{name}: no success response")
            for code, response in successes.items():
                content = response.get("content")
                if code == "204" and not content:
                    continue
                if not content:
                    faults.append(f"{name}: {code} declares no media type")
                    continue
                for media, body in content.items():
                    if "json" in media and not described(body.get("schema") or {}):
                        faults.append(f"{name}: {code} {media} has no response schema")
            if path.startswith("/api"):
                problems = [code for code, r in responses.items() if code[0] in "45"
                            and PROBLEM_JSON in r.get("content", {})]
                if not problems:
                    faults.append(f"{name}: declares no problem+json error")
    return faults


@pytest.mark.parametrize("service", SERVICES)
def test_every_route_declares_what_it_answers(service: str) -> None:
    faults = untyped(openapi(service))
    assert faults == []


def test_the_rule_finds_an_untyped_route() -> None:
    """The check itself can fail: a bare dict answer and a route without declared errors are both reported."""
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/api/v1/bare")
    async def bare() -> dict:
        return {}

    assert untyped(app.openapi()) == ["GET /api/v1/bare: 200 application/json has no response schema",
                                      "GET /api/v1/bare: declares no problem+json error"]
