"""deploy/client.py logs in again once when its short-lived access token has expired (issue 9 §6)."""

from __future__ import annotations

import httpx
import pytest

from deploy.client import ApiError, Huzhu


def fake_services(expired: set[str]) -> tuple[httpx.MockTransport, list[str]]:
    logins: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/auth/token":
            token = f"token-{len(logins) + 1}"
            logins.append(token)
            return httpx.Response(200, json={"access_token": token, "expires_in": 1800})
        token = request.headers["Authorization"].removeprefix("Bearer ")
        if token in expired:
            return httpx.Response(401, json={"code": "token_expired"})
        if token == "bad":
            return httpx.Response(401, json={"code": "invalid_token"})
        return httpx.Response(200, json={"token": token})

    return httpx.MockTransport(handle), logins


def test_an_expired_token_is_renewed_once_and_the_call_repeated() -> None:
    transport, logins = fake_services(expired={"token-1"})
    api = Huzhu({"enrollment": "http://e", "claims": "http://c"})
    api.http = httpx.Client(transport=transport)
    session = api.login("agent1", "huzhu-demo")
    assert session.get("claims", "/api/v1/review-queue") == {"token": "token-2"}
    assert logins == ["token-1", "token-2"] and session.token == "token-2"


def test_another_401_is_not_retried() -> None:
    transport, logins = fake_services(expired=set())
    api = Huzhu({"enrollment": "http://e", "claims": "http://c"})
    api.http = httpx.Client(transport=transport)
    session = api.login("agent1", "huzhu-demo")
    session.token = "bad"
    with pytest.raises(ApiError) as refused:
        session.get("claims", "/api/v1/review-queue")
    assert refused.value.status == 401 and logins == ["token-1"]
