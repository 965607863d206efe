"""Login timing (issue 9 §6): an unknown username must cost what a wrong password for a real account costs
(both verify an argon2 hash), so the answer's timing does not tell who has an account. Median of each, and
their ratio (1.0 is the goal; it was about 1/50 before the dummy hash)."""

from __future__ import annotations

import statistics
import time
import uuid
from typing import Any

import httpx

ATTEMPTS_PER_NAME = 5  # below the lockout (10 in 15 minutes), so every answer is a 401


def run(base_url: str, names: int = 6) -> dict[str, Any]:
    http = httpx.Client(base_url=base_url, timeout=60)
    admin = http.post("/api/v1/auth/token", data={"username": "admin", "password": "admin"}).json()
    headers = {"Authorization": f"Bearer {admin['access_token']}"}
    real = []
    for _ in range(names):
        username = f"bench-{uuid.uuid4().hex[:8]}"
        http.post("/api/v1/users", headers=headers, json={"username": username, "password": "bench-password-1",
                                                          "role": "admin"}).raise_for_status()
        real.append(username)

    def timed(username: str) -> float:
        started = time.perf_counter()
        r = http.post("/api/v1/auth/token", data={"username": username, "password": "not-the-password"})
        elapsed = time.perf_counter() - started
        assert r.status_code == 401, r.text
        return elapsed

    wrong, unknown = [], []
    for i in range(names):
        for _ in range(ATTEMPTS_PER_NAME):  # interleaved, so load changes hit both alike
            wrong.append(timed(real[i]))
            unknown.append(timed(f"nobody-{uuid.uuid4().hex[:8]}"))
    wrong_ms, unknown_ms = statistics.median(wrong) * 1000, statistics.median(unknown) * 1000
    return {"attempts_each": len(wrong), "wrong_password_median_ms": round(wrong_ms, 1),
            "unknown_username_median_ms": round(unknown_ms, 1),
            "unknown_over_wrong": round(unknown_ms / wrong_ms, 3)}
