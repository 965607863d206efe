"""Every service answers health, metrics and problem+json errors the same way (docs/API.md "Every service")."""

import pytest

from tests.conftest import ServiceClient

SERVICES = ["enrollment", "claims", "payments", "notifications"]


@pytest.mark.parametrize("name", SERVICES)
async def test_every_service_is_healthy_and_not_ready_without_its_broker(rolled_back: ServiceClient,
                                                                         name: str) -> None:
    _, client = await rolled_back(name)
    assert (await client.get("/healthz")).json() == {"status": "ok", "service": name}
    ready = await client.get("/readyz")
    # Built without Kafka workers: the database is fine, the broker is not connected, so not ready.
    assert ready.status_code == 503
    assert ready.json()["checks"] == {"database": "ok", "kafka": "not started"}


@pytest.mark.parametrize("name", SERVICES)
async def test_metrics_are_prometheus_text(rolled_back: ServiceClient, name: str) -> None:
    _, client = await rolled_back(name)
    await client.get("/healthz")
    body = (await client.get("/metrics")).text
    assert 'http_requests_total{method="GET",route="/healthz",status="200"}' in body
    assert f'service_info{{service="{name}"}} 1.0' in body


@pytest.mark.parametrize("name", SERVICES)
async def test_a_call_without_a_token_is_a_chinese_problem_with_a_code(rolled_back: ServiceClient,
                                                                       name: str) -> None:
    _, client = await rolled_back(name)
    path = {"enrollment": "/api/v1/periods/x", "claims": "/api/v1/review-queue",
            "payments": "/api/v1/payment-instructions", "notifications": "/api/v1/me/notifications"}[name]
    r = await client.get(path)
    assert r.status_code == 401
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["code"] == "missing_token" and body["status"] == 401 and "登录" in body["detail"]
    assert r.headers["X-Correlation-ID"]


async def test_an_unknown_path_is_a_problem_not_a_stack_trace(rolled_back: ServiceClient) -> None:
    _, client = await rolled_back("claims")
    r = await client.get("/api/v1/nothing-here")
    assert r.status_code == 404 and r.json()["code"] == "not_found"
