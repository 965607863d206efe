"""Scale-out (issue #11, item 5): two replicas of claims and of payments in one consumer group share the
topics' partitions; one replica of each is SIGKILLed while claims flow and its partitions move to the other;
every invariant of deploy/chaos.py holds afterwards (nothing applied twice, nothing lost)."""

from __future__ import annotations

import json
import re
import threading
import time

import httpx
import pytest

from deploy.chaos import Load, Report, build_world, settle
from deploy.client import Huzhu
from deploy.infra import free_port
from deploy.localstack import SERVICES, Stack

REPLICAS = ("claims", "claims-2", "payments", "payments-2")
APPLIED = re.compile(r"^events_applied_total ([0-9.e+]+)$", re.M)


def scrape(stack: Stack, applied: dict[str, float], names: tuple[str, ...] = REPLICAS) -> None:
    """Each process counts the events its own consumer applied (/metrics): the highest seen is kept."""
    for name in names:
        try:
            found = APPLIED.search(httpx.get(f"{stack.url(name)}/metrics", timeout=2).text)
        except httpx.HTTPError:
            continue
        if found:
            applied[name] = max(applied.get(name, 0.0), float(found.group(1)))


def test_two_replicas_share_the_partitions_and_nothing_is_applied_twice_while_one_dies(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    stack = Stack(home=tmp_path_factory.mktemp("scale"), pg_port=free_port(), kafka_port=free_port(),
                  ports={name: free_port() for name in SERVICES}, partitions=6, replicas=2)
    applied: dict[str, float] = {}
    try:
        stack.start()
        assert sorted(stack.procs) == sorted([*SERVICES, "claims-2", "payments-2"])
        api = Huzhu({name: stack.url(name) for name in SERVICES}, timeout=15)
        world = build_world(api, 10, seed=5)
        report = Report(seed=5, duration=25)
        load = Load(api, world, 5, report)
        stop = threading.Event()
        worker = threading.Thread(target=load.run, args=(stop,), daemon=True)
        worker.start()
        deadline = time.monotonic() + 12
        while time.monotonic() < deadline:
            scrape(stack, applied)
            time.sleep(1)
        # Both replicas of each service applied events: the partitions are shared.
        assert all(applied.get(name, 0) > 0 for name in REPLICAS), applied
        stack.kill_service("claims-2")
        stack.kill_service("payments-2")
        deadline = time.monotonic() + 13
        while time.monotonic() < deadline:
            scrape(stack, applied, ("claims", "payments"))
            time.sleep(1)
        stop.set()
        worker.join(180)
        invariants, _ = settle(stack, 90)
        failed = {name: v for name, v in invariants.items() if not v["ok"]}
        assert not failed, (failed, applied)
        assert report.claims_decided > 0 and not report.load_errors, report.as_dict()
        (tmp_path_factory.getbasetemp() / "scale-out.json").write_text(json.dumps(
            {"events_applied_per_process": applied, "claims_decided": report.claims_decided,
             "invariants": invariants}, indent=2))
    finally:
        stack.stop()
