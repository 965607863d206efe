"""Claims through the running services: submission to ``in_review`` over HTTP against the real claims process
(its own PostgreSQL database, coverage learned from enrollment's events through Tansu), with p50/p99 latency,
at 8 and 16 concurrent clients, a bounded count of requests, loopback only.

The reference (issue 15): the same client sends the same requests, at the same concurrency, to an empty-handler
FastAPI endpoint served the same way on the same machine (``bench/empty_app.py``); ``share_of_reference`` is the
claims rate over the reference's, the part of the machine's HTTP budget the claim work leaves.

The profile: with py-spy installed (a dev dependency), one more 16-client run is recorded in the claims process
(sampling, not in the timed runs) and the top frames are written to ``bench-results/claims_profile.txt``."""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx

from bench.people import csv_bytes
from bench.procfs import cpu_seconds, postgres_cpu_seconds
from bench.profile_summary import summarize
from deploy.client import Huzhu, Session, wait_for
from deploy.demo_data import open_period_document
from deploy.infra import free_port
from deploy.localstack import ROOT, SERVICES, Stack


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


def submit_elsewhere(url: str, headers: dict[str, str], member_ids: list[str], claims: int,
                     concurrency: int) -> dict[str, Any]:
    """``submit_all`` in a process of its own: the process that runs the stack also hosts the local SMS and mail
    endpoints (deploy/messagesinks.py), whose threads would otherwise share the client's interpreter lock and
    slow the client, not the services."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(_submit_sync, url, headers, member_ids, claims, concurrency).result()


def _submit_sync(url: str, headers: dict[str, str], member_ids: list[str], claims: int,
                 concurrency: int) -> dict[str, Any]:
    started = time.process_time()
    result = asyncio.run(submit_all(url, headers, member_ids, claims, concurrency))
    return {**result, "client_cpu_seconds": round(time.process_time() - started, 2)}


def cpu_by_process(stack: Stack) -> dict[str, float]:
    """CPU seconds used so far by each service, the broker and PostgreSQL (the postmaster, its live backends and
    those that ended: a backend's time moves to its parent's children's time when it exits)."""
    pids = {name: proc.pid for name, proc in stack.procs.items()}
    if stack.broker is not None and stack.broker.process is not None:
        pids["broker"] = stack.broker.process.pid
    seconds = cpu_seconds(set(pids.values()))
    used = {name: seconds.get(pid, 0.0) for name, pid in pids.items()}
    if stack.pg is not None:
        with contextlib.suppress(OSError, ValueError, IndexError):
            used["postgres"] = postgres_cpu_seconds(stack)
    return used


def measure(stack: Stack, headers: dict[str, str], member_ids: list[str], claims: int,
            concurrency: int) -> dict[str, Any]:
    """One timed run against the claims service, with the CPU each process of the machine spent on it, per claim
    (the run's own work; what its events set going afterwards, e.g. the members' SMS, is in ``..._with_tail``)."""
    before = cpu_by_process(stack)
    measured = submit_elsewhere(stack.url("claims"), headers, member_ids, claims, concurrency)
    during = cpu_by_process(stack)
    settle(stack)
    after = cpu_by_process(stack)
    client = measured.pop("client_cpu_seconds")
    per_claim = {name: round((during[name] - before[name]) * 1000 / claims, 2) for name in during if name in before}
    with_tail = {name: round((after[name] - before[name]) * 1000 / claims, 2) for name in after if name in before}
    per_claim["client"] = with_tail["client"] = round(client * 1000 / claims, 2)
    return {**measured, "cpu_ms_per_claim": per_claim, "cpu_ms_per_claim_with_tail": with_tail}


def settle(stack: Stack, timeout: float = 120.0) -> None:
    """Wait until the machine is quiet: the stack's services, the broker and PostgreSQL (its autovacuum after a bulk
    part included) together under a fifth of a core for a second (idle, their relays, consumers and sweepers
    polling take about a tenth). Each claim sets events going (the relay, notifications, the SMS sink), a bulk part
    leaves tables to vacuum, and a run measured while the last one's tail still runs is not comparable."""
    deadline = time.monotonic() + timeout
    before = sum(cpu_by_process(stack).values())
    while time.monotonic() < deadline:
        time.sleep(1.0)
        after = sum(cpu_by_process(stack).values())
        if after - before < 0.2:
            return
        before = after


def _up(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def reference(headers: dict[str, str], member_ids: list[str], claims: int, concurrency: int) -> dict[str, Any]:
    """The empty-handler endpoint in a process of its own, served like the services, driven by the same client."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "bench.empty_app", str(port)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for("reference endpoint", lambda: _up(f"{url}/healthz"), 30)
        return submit_elsewhere(url, headers, member_ids, claims, concurrency)
    finally:
        proc.terminate()
        proc.wait(15)


def profile(stack: Stack, headers: dict[str, str], member_ids: list[str], claims: int,
            out: Path) -> dict[str, Any] | None:
    """py-spy samples the claims process during one more 16-client run; its top frames go to ``out``."""
    spy = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))
    proc = stack.procs.get("claims")
    if spy is None or proc is None:
        return None
    raw = out.with_suffix(".raw")
    recorder = subprocess.Popen([spy, "record", "--pid", str(proc.pid), "--rate", "200", "--function", "--format", "raw",
                                 "--output", str(raw)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)  # py-spy attached
    try:
        timed = submit_elsewhere(stack.url("claims"), headers, member_ids, claims, 16)
    finally:
        recorder.send_signal(2)  # SIGINT: py-spy writes what it has
        recorder.wait(60)
    if not raw.exists():
        return None
    out.write_text(f"py-spy, claims process, {claims} claims at 16 clients "
                   f"({timed['claims_per_second']}/s while sampled)\n\n" + summarize(raw.read_text()))
    raw.unlink()
    return {"file": str(out.relative_to(ROOT)), "claims_per_second_while_sampled": timed["claims_per_second"]}


def run(stack: Stack, members: int = 200, claims: int = 2000) -> dict[str, Any]:
    headers, member_ids = setup_world(stack, members)
    result: dict[str, Any] = {}
    for concurrency in (8, 16):
        settle(stack)
        empty = reference(headers, member_ids, claims, concurrency)
        settle(stack)
        measured = measure(stack, headers, member_ids, claims, concurrency)
        result[f"clients_{concurrency}"] = {
            **measured, "reference_empty_endpoint": empty,
            "share_of_reference": round(measured["claims_per_second"] / empty["claims_per_second"], 3)}
    if os.environ.get("BENCH_CLAIMS_PROFILE", "1") != "0":
        settle(stack)
        result["profile"] = profile(stack, headers, member_ids, claims, ROOT / "bench-results" / "claims_profile.txt")
    return result
