"""Claims through the running services: submission to ``in_review`` over HTTP against the real claims process
(its own PostgreSQL database, coverage learned from enrollment's events through Tansu), with p50/p99 latency.
Concurrency 8, a bounded count of requests, loopback only."""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import httpx

from bench.people import csv_bytes
from deploy.client import Huzhu, Session, wait_for
from deploy.demo_data import open_period_document
from deploy.localstack import SERVICES, Stack


def setup_world(stack: Stack, members: int) -> tuple[dict[str, str], list[str]]:
    api = Huzhu({name: stack.url(name) for name in SERVICES})
    admin = api.login("admin", "admin")
    for code, level, parent in (("QC", "centre", None), ("QO", "office", "QC"), ("QA", "agency_point", "QO"),
                                ("QU", "unit", "QA")):
        admin.post("enrollment", "/api/v1/orgs", json={"code": code, "name": code, "level": level, "parent": parent})
    admin.post("enrollment", "/api/v1/users", json={"username": "qagent", "password": "bench-password",
                                                     "role": "unit_agent", "org": "QU"})
    admin.post("enrollment", "/api/v1/periods", json=open_period_document("bench-claims"))
    data = csv_bytes(members, 7_000_000)
    roster = admin.post("enrollment", "/api/v1/periods/bench-claims/units/QU/rosters",
                        files={"file": ("名单.csv", data, "text/csv")},
                        data={"staff_total": str(members), "staff_in_service": str(members),
                              "staff_basic_insured_in_service": str(members)})
    admin.post("enrollment", f"/api/v1/rosters/{roster['roster_id']}/payments",
               json={"amount": roster["fee_total"], "reference": "BENCH", "paid_at": date.today().isoformat()})
    agent = api.login("qagent", "bench-password")
    certnos = [line.split(",")[1] for line in data.decode().splitlines()[1:]]
    ids = [wait_for("coverage in claims", _coverage_probe(agent, certno), 120)[0]["member_id"] for certno in certnos]
    return {"Authorization": f"Bearer {agent.token}"}, ids


def _coverage_probe(agent: Session, certno: str) -> Callable[[], Any]:
    return lambda: agent.get("claims", "/api/v1/coverages", params={"certno": certno})


async def submit_all(url: str, headers: dict[str, str], member_ids: list[str], claims: int,
                     concurrency: int = 8) -> dict[str, Any]:
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    discharge = date.today() - timedelta(days=3)
    queue: asyncio.Queue[str] = asyncio.Queue()
    for i in range(claims):
        queue.put_nowait(member_ids[i % len(member_ids)])

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            member_id = queue.get_nowait()
            body = {"member_id": member_id, "plan": "inpatient", "admission_date": str(discharge - timedelta(days=5)),
                    "discharge_date": str(discharge), "diagnosis": {"icd10": "K35.8", "name": "急性阑尾炎"},
                    "settlement": {"setl_id": f"B-{uuid.uuid4().hex}", "med_type": "21", "medfee_sumamt": "9000.00",
                                   "fund_pay_sumamt": "6000.00", "psn_part_amt": "3000.00",
                                   "fulamt_ownpay_amt": "200.00"}}
            started = time.perf_counter()
            r = await client.post("/api/v1/claims", json=body, headers=headers)
            latencies.append(time.perf_counter() - started)
            status = r.json().get("status", str(r.status_code)) if r.status_code < 500 else str(r.status_code)
            statuses[status] = statuses.get(status, 0) + 1

    started = time.perf_counter()
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {"claims": claims, "concurrency": concurrency, "seconds": round(elapsed, 3),
            "claims_per_second": round(claims / elapsed, 1), "statuses": statuses,
            "p50_ms": round(statistics.median(latencies) * 1000, 1),
            "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 1)}


def run(stack: Stack, members: int = 200, claims: int = 2000) -> dict[str, Any]:
    headers, member_ids = setup_world(stack, members)
    return asyncio.run(submit_all(stack.url("claims"), headers, member_ids, claims))
