"""A small HTTP client for the four services, used by the demo loader, ``make demo`` and the e2e tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx


class ApiError(RuntimeError):
    def __init__(self, response: httpx.Response) -> None:
        self.status = response.status_code
        try:
            self.body: Any = response.json()
        except ValueError:
            self.body = response.text
        super().__init__(f"{response.request.method} {response.request.url} -> {self.status}: {self.body}")


class Huzhu:
    def __init__(self, urls: dict[str, str], timeout: float = 30.0) -> None:
        self.urls = urls
        self.http = httpx.Client(timeout=timeout)

    def login(self, username: str, password: str) -> Session:
        return Session(self, self.token(username, password), (username, password))

    def token(self, username: str, password: str) -> str:
        r = self.http.post(f"{self.urls['enrollment']}/api/v1/auth/token",
                           data={"username": username, "password": password})
        if r.status_code != 200:
            raise ApiError(r)
        return str(r.json()["access_token"])


class Session:
    """Calls as one user. Access tokens are short-lived (ENROLLMENT_TOKEN_TTL_SECONDS, 30 minutes): when one
    has expired the session logs in again once and repeats the call."""

    def __init__(self, api: Huzhu, token: str, credentials: tuple[str, str] | None = None) -> None:
        self.api, self.token, self.credentials = api, token, credentials

    def call(self, method: str, service: str, path: str, *, expect: tuple[int, ...] = (200, 201, 202),
             **kwargs: Any) -> Any:
        extra = kwargs.pop("headers", {})
        r = self.api.http.request(method, f"{self.api.urls[service]}{path}",
                                  headers={"Authorization": f"Bearer {self.token}", **extra}, **kwargs)
        if r.status_code == 401 and self.credentials and _code(r) == "token_expired":
            self.token = self.api.token(*self.credentials)
            r = self.api.http.request(method, f"{self.api.urls[service]}{path}",
                                      headers={"Authorization": f"Bearer {self.token}", **extra}, **kwargs)
        if r.status_code not in expect:
            raise ApiError(r)
        return r.json() if r.content else None

    def get(self, service: str, path: str, **kw: Any) -> Any:
        return self.call("GET", service, path, **kw)

    def post(self, service: str, path: str, **kw: Any) -> Any:
        return self.call("POST", service, path, **kw)


def _code(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body.get("code") if isinstance(body, dict) else None


def wait_for(what: str, probe: Callable[[], Any], timeout: float = 60.0, interval: float = 0.1) -> Any:
    """Poll until ``probe()`` returns something truthy (events travel asynchronously)."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up waiting for {what} after {timeout}s")
        time.sleep(interval)
