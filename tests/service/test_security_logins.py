"""Issue 9 §6: login lockout, unknown usernames cost a hash like wrong passwords, password change, short-lived
access tokens. Against the enrollment service and a real PostgreSQL."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import jwt
import pytest
from sqlalchemy import select

from services.enrollment import logins
from services.enrollment.models import AuditEntry
from shared.auth import Principal, issue_token
from shared.settings import DEV_JWT_SECRET
from tests.conftest import ServiceClient

PASSWORD = "correct-horse-battery"


async def enrollment(make: ServiceClient) -> tuple[Any, httpx.AsyncClient]:
    return await make("enrollment")


# The three lock-out tests stay on the shared database (service_client): each failure is recorded in its own
# committed transaction while the request's is rolled back with the 401, which one shared transaction cannot hold.


async def login(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    return await client.post("/api/v1/auth/token", data={"username": username, "password": password})


async def new_user(client: httpx.AsyncClient, role: str = "admin") -> str:
    r = await login(client, "admin", "admin")
    assert r.status_code == 200, r.text
    username = f"{role}-{uuid.uuid4().hex[:8]}"
    r = await client.post("/api/v1/users", json={"username": username, "password": PASSWORD, "role": role},
                          headers={"Authorization": f"Bearer {r.json()['access_token']}"})
    assert r.status_code == 201, r.text
    return username


async def audit(app: Any, action: str, subject: str) -> list[AuditEntry]:
    async with app.state.db.transaction() as session:
        return list((await session.execute(select(AuditEntry).where(
            AuditEntry.action == action, AuditEntry.subject == subject))).scalars())


async def test_ten_wrong_passwords_lock_the_username_even_for_the_right_one(service_client: ServiceClient) -> None:
    app, client = await enrollment(service_client)
    username = await new_user(client)
    for attempt in range(10):  # the attack as made: guesses in a row
        r = await login(client, username, f"guess-{attempt}")
        assert r.status_code == 401 and r.json()["code"] == "bad_credentials"
    r = await login(client, username, PASSWORD)
    assert r.status_code == 429, r.text
    assert r.json()["code"] == "login_locked" and "分钟" in r.json()["detail"]
    retry_after = int(r.headers["retry-after"])
    assert 0 < retry_after <= 15 * 60
    [entry] = await audit(app, "auth.locked", username)
    assert entry.detail["failures"] == 10
    # Another username is not locked by it.
    other = await new_user(client)
    assert (await login(client, other, PASSWORD)).status_code == 200


async def test_one_failure_short_of_the_limit_the_right_password_logs_in_and_clears_the_count(
        service_client: ServiceClient, monkeypatch: pytest.MonkeyPatch) -> None:
    app, client = await enrollment(service_client)
    monkeypatch.setattr(app.state.settings, "login_max_failures", 3)  # the setting, smaller: fewer argon2 runs
    username = await new_user(client)
    for attempt in range(2):
        assert (await login(client, username, f"guess-{attempt}")).status_code == 401
    assert (await login(client, username, PASSWORD)).status_code == 200
    for attempt in range(2):  # counted afresh after the success
        assert (await login(client, username, f"again-{attempt}")).status_code == 401
    assert (await login(client, username, PASSWORD)).status_code == 200
    for attempt in range(3):
        assert (await login(client, username, f"third-{attempt}")).status_code == 401
    assert (await login(client, username, PASSWORD)).status_code == 429


async def test_an_unknown_username_is_checked_against_a_dummy_hash_and_locks_alike(
        service_client: ServiceClient, monkeypatch: pytest.MonkeyPatch) -> None:
    app, client = await enrollment(service_client)
    verified: list[str] = []
    real = logins._verify

    async def spy(password_hash: str, password: str) -> bool:
        verified.append(password_hash)
        return await real(password_hash, password)

    monkeypatch.setattr(logins, "_verify", spy)
    monkeypatch.setattr(app.state.settings, "login_max_failures", 3)
    nobody = f"nobody-{uuid.uuid4().hex[:8]}"
    r = await login(client, nobody, "whatever-password")
    assert r.status_code == 401 and r.json()["code"] == "bad_credentials"
    assert verified == [logins.DUMMY_HASH]  # the same argon2 work as a wrong password for a real account
    assert logins.DUMMY_HASH.startswith("$argon2")
    for _ in range(2):
        await login(client, nobody, "whatever-password")
    r = await login(client, nobody, "whatever-password")
    assert r.status_code == 429 and "retry-after" in r.headers  # unknown and known names answer alike


async def test_every_user_changes_their_own_password_under_the_policy(rolled_back: ServiceClient) -> None:
    app, client = await enrollment(rolled_back)
    username = await new_user(client, "admin")
    token = (await login(client, username, PASSWORD)).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}

    r = await client.post("/api/v1/auth/password", json={"old_password": "not-mine", "new_password": "x" * 20},
                          headers=headers)
    assert r.status_code == 403 and r.json()["code"] == "bad_credentials"
    for weak in ("short-1", PASSWORD, f"my-{username}-pass", "a" * 12):
        r = await client.post("/api/v1/auth/password", json={"old_password": PASSWORD, "new_password": weak},
                              headers=headers)
        assert r.status_code == 422 and r.json()["code"] == "password_too_weak", weak
        assert r.json()["errors"][0]["loc"] == ["body", "new_password"]
    new = "银杏-ginkgo-2026"
    r = await client.post("/api/v1/auth/password", json={"old_password": PASSWORD, "new_password": new},
                          headers=headers)
    assert r.status_code == 200 and r.json() == {"username": username, "changed": True}
    assert (await login(client, username, PASSWORD)).status_code == 401
    assert (await login(client, username, new)).status_code == 200
    assert len(await audit(app, "auth.password_change", username)) == 1
    r = await client.post("/api/v1/auth/password", json={"old_password": new, "new_password": "x" * 20})
    assert r.status_code == 401  # only with a token


async def test_access_tokens_are_short_lived_and_an_expired_one_is_refused(rolled_back: ServiceClient) -> None:
    app, client = await enrollment(rolled_back)
    r = await login(client, "admin", "admin")
    body = r.json()
    assert body["expires_in"] == app.state.settings.token_ttl_seconds == 30 * 60
    claims = jwt.decode(body["access_token"], DEV_JWT_SECRET, algorithms=["HS256"], issuer="huzhu")
    assert claims["exp"] - claims["iat"] == 30 * 60
    principal = Principal(user_id=claims["sub"], username="admin", role="admin", org="", org_level="",
                          org_path=())
    expired = issue_token(principal, DEV_JWT_SECRET, -1)
    assert jwt.decode(expired, options={"verify_signature": False})["exp"] < time.time()
    r = await client.get("/api/v1/orgs/none", headers={"Authorization": f"Bearer {expired}"})
    assert r.status_code == 401 and r.json()["code"] == "token_expired"
