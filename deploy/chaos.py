"""Chaos on the real local stack (issue #11, item 4): claims flow while every service, the broker and
PostgreSQL are SIGKILLed at random points and started again; then the invariants are checked.

``make chaos SEED=7 DURATION=600`` runs it for as long as asked and writes ``chaos-results/report.json``;
``tests/chaos/test_chaos.py`` runs a short, bounded round of it in ``make test``.

Invariants (after the load stops and the system has settled):
- every approved claim with aid > 0 has exactly one live instruction of its amount (payments);
- the aid approved in claims, the live instructions and the ledger's approvals sum to the same amount;
- every event reached every consumer that handles it, once (each consumer's inbox holds it);
- no duplicate messages (one payment_scheduled message per instruction created);
- nothing stuck: every outbox published, no event parked, every submitted claim decided.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from deploy.client import ApiError, Huzhu, Session
from deploy.demo_data import open_period_document
from deploy.infra import free_port
from deploy.localstack import SERVICES, Stack
from deploy.people import person
from shared.broker_watch import CONSUMER_GROUPS

PASSWORD = "chaos-password"
TARGETS = (*SERVICES, "broker", "postgres")
PUBLISHER = {"enrollment.events": "enrollment", "claims.events": "claims", "payments.events": "payments"}


def handled_types() -> dict[str, set[str]]:
    from services.claims.handlers import HANDLERS as claims
    from services.notifications.handlers import HANDLERS as notifications
    from services.payments.handlers import handlers
    from shared.events import ClaimApproved
    from shared.settings import PaymentsSettings

    payments = handlers(PaymentsSettings(local_stack=True))

    return {"claims": set(claims), "payments": set(payments), "notifications": set(notifications),
            "enrollment": {ClaimApproved.TYPE}}


@dataclass
class Report:
    seed: int
    duration: float
    kills: dict[str, int] = field(default_factory=lambda: {t: 0 for t in TARGETS})
    # Services that exited by themselves (e.g. started while PostgreSQL was down) and were started again, as
    # a process supervisor (systemd, Kubernetes, compose's restart policy) does in production.
    supervisor_restarts: dict[str, int] = field(default_factory=lambda: {s: 0 for s in SERVICES})
    claims_submitted: int = 0
    claims_decided: int = 0
    http_retries: int = 0
    load_errors: list[str] = field(default_factory=list)
    settle_seconds: float = 0.0
    wall_seconds: float = 0.0  # the whole run: start, world, chaos, settle, stop
    # How often each service's broker watch logged a broker that lost its events (read from the logs: the
    # processes' own counters die with them).
    broker_losses_noticed: dict[str, int] = field(default_factory=dict)
    invariants: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return bool(self.invariants) and all(v["ok"] for v in self.invariants.values())

    def as_dict(self) -> dict[str, Any]:
        return {"seed": self.seed, "duration_seconds": self.duration, "kills": self.kills,
                "supervisor_restarts": self.supervisor_restarts, "broker_restarts": self.kills["broker"], "postgres_restarts": self.kills["postgres"],
                "claims_submitted": self.claims_submitted, "claims_decided": self.claims_decided,
                "http_retries": self.http_retries, "load_errors": self.load_errors[:10], "settle_seconds": round(self.settle_seconds, 1),
                "wall_seconds": round(self.wall_seconds, 1), "broker_losses_noticed": self.broker_losses_noticed,
                "invariants": self.invariants, "ok": self.ok}


class Chaos:
    def __init__(self, stack: Stack, seed: int, report: Report) -> None:
        self.stack, self.rng, self.report = stack, random.Random(seed), report
        self.lock = threading.Lock()  # one kill at a time

    def kill(self, target: str) -> None:
        stack = self.stack
        with self.lock:
            if target in SERVICES:
                stack.kill_service(target)
                time.sleep(self.rng.uniform(0.2, 1.5))
                stack.start_service(target)
            elif target == "broker":
                assert stack.broker is not None and stack.broker.process is not None
                stack.broker.process.send_signal(signal.SIGKILL)
                stack.broker.process.wait(10)
                time.sleep(self.rng.uniform(0.2, 1.5))
                stack.broker.start(stack.home / "logs" / "broker.log")  # empty: memory storage
            else:
                assert stack.pg is not None
                pid = int((stack.pg.data_dir / "postmaster.pid").read_text().split()[0])
                os.kill(pid, signal.SIGKILL)
                time.sleep(self.rng.uniform(0.2, 1.0))
                deadline = time.monotonic() + 60
                while True:  # orphaned backends must notice their postmaster died before a new one starts
                    try:
                        stack.pg.start()
                        break
                    except RuntimeError:
                        if time.monotonic() > deadline:
                            raise
                        time.sleep(0.5)
            self.report.kills[target] += 1

    def supervise(self, stop: threading.Event) -> None:
        while not stop.wait(0.5):
            with self.lock:
                for name, proc in list(self.stack.procs.items()):
                    if proc.poll() is not None:
                        self.stack.start_service(name)
                        self.report.supervisor_restarts[name] += 1

    def run(self, stop: threading.Event, duration: float) -> None:
        """Every target once in a random order spread over the run, then random targets until it ends."""
        order = list(TARGETS)
        self.rng.shuffle(order)
        started = time.monotonic()
        gap = min(duration / (len(order) + 1), 8.0)  # every target soon, then a kill every few seconds
        while not stop.is_set() and (order or time.monotonic() - started < duration):
            if stop.wait(self.rng.uniform(0.3, 1.0) * gap):
                return
            if not order and time.monotonic() - started >= duration:
                return
            self.kill(order.pop(0) if order else self.rng.choice(TARGETS))


class Load:
    """Unit agents submit claims, reviewers approve them, each call retried until it lands."""

    def __init__(self, api: Huzhu, world: dict[str, Any], seed: int, report: Report) -> None:
        self.api, self.world, self.rng, self.report = api, world, random.Random(seed + 1), report
        self.sessions: dict[str, Session] = {}
        self.claim_ids: list[str] = []

    def session(self, username: str) -> Session:
        if username not in self.sessions:
            self.sessions[username] = self.retry(lambda: self.api.login(username, PASSWORD))
        return self.sessions[username]

    def retry(self, call: Any, timeout: float = 120.0) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            try:
                return call()
            except (httpx.HTTPError, ApiError) as exc:
                status = getattr(exc, "status", 0)
                if status and status < 500 and status not in (409, 401):
                    raise
                if time.monotonic() > deadline:
                    raise
                self.report.http_retries += 1
                time.sleep(0.3)

    def submit(self) -> None:
        member_id = self.rng.choice(self.world["member_ids"])
        base = Decimal(self.rng.randrange(2000, 10000))
        discharge = date.today() - timedelta(days=self.rng.randrange(2, 30))
        psn_part = base + Decimal("500.00")
        body = {"member_id": member_id, "plan": "inpatient",
                "admission_date": (discharge - timedelta(days=5)).isoformat(),
                "discharge_date": discharge.isoformat(), "diagnosis": {"icd10": "I21.9", "name": "急性心肌梗死"},
                "settlement": {"setl_id": f"CH{uuid.uuid4().hex}", "med_type": "21",
                               "medfee_sumamt": f"{psn_part * 3:.2f}", "fund_pay_sumamt": f"{psn_part * 2:.2f}",
                               "psn_part_amt": f"{psn_part:.2f}", "fulamt_ownpay_amt": "500.00"}}
        key = str(uuid.uuid4())  # the same key on every retry: submitted once whatever fails in between
        created = self.retry(lambda: self.session("agent").post(
            "claims", "/api/v1/claims", json=body, headers={"Idempotency-Key": key}))
        self.report.claims_submitted += 1
        self.claim_ids.append(created["claim_id"])
        self.decide(created["claim_id"])

    def decide(self, claim_id: str) -> None:
        for reviewer in ("agency", "office", "centre"):
            claim = self.retry(lambda who=reviewer: self.session(who).get("claims", f"/api/v1/claims/{claim_id}"))
            if claim["status"] != "in_review":
                break

            # 第十二条: the reviewer found none of the checklist's exclusions
            answers = {i["code"]: False for i in claim.get("exclusions_checklist", [])}

            def approve(who: str = reviewer, answers: dict[str, bool] = answers) -> Any:
                try:
                    return self.session(who).post("claims", f"/api/v1/claims/{claim_id}/decisions",
                                                  json={"decision": "approve", "exclusions_checklist": answers})
                except ApiError as exc:
                    if exc.status in (403, 409):  # decided already by our previous, lost, attempt
                        return None
                    raise

            self.retry(approve)
        self.report.claims_decided += 1

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.submit()
            except Exception as exc:  # reported, and the load goes on: the invariants judge the outcome
                self.report.load_errors.append(f"{type(exc).__name__}: {str(exc)[:300]}")
                time.sleep(0.5)


def build_world(api: Huzhu, members: int, seed: int) -> dict[str, Any]:
    admin = api.login("admin", "admin")
    tag = uuid.uuid4().hex[:4].upper()
    tree = [(f"C{tag}", "互助中心", "centre", None), (f"C{tag}-O", "办事处", "office", f"C{tag}"),
            (f"C{tag}-A", "代办点", "agency_point", f"C{tag}-O"), (f"C{tag}-U1", "一号工会", "unit", f"C{tag}-A")]
    for code, name, level, parent in tree:
        admin.post("enrollment", "/api/v1/orgs", json={"code": code, "name": name, "level": level, "parent": parent})
    staff = {"centre": ("centre_reviewer", f"C{tag}"), "office": ("office_reviewer", f"C{tag}-O"),
             "agency": ("agency_reviewer", f"C{tag}-A"), "agent": ("unit_agent", f"C{tag}-U1")}
    for username, (role, org) in staff.items():
        admin.post("enrollment", "/api/v1/users", json={"username": username, "password": PASSWORD, "role": role,
                                                        "org": org})
    period = f"chaos-{tag.lower()}"
    admin.post("enrollment", "/api/v1/periods", json=open_period_document(period))
    rng = random.Random(seed)
    people = [person(rng) for _ in range(members)]
    agent = api.login("agent", PASSWORD)
    roster = agent.post("enrollment", f"/api/v1/periods/{period}/units/C{tag}-U1/rosters",
                        json={"staff": {"total": members, "in_service": members,
                                        "basic_insured_in_service": members}, "members": people})
    agent.post("enrollment", f"/api/v1/rosters/{roster['roster_id']}/payments",
               json={"amount": roster["fee_total"], "reference": "CHAOS-1", "paid_at": date.today().isoformat()})
    member_ids = [agent.get("enrollment", "/api/v1/members", params={"certno": p["certno"]})[0]["member_id"]
                  for p in people]
    return {"period": period, "member_ids": member_ids}


def rows(stack: Stack, service: str, sql: str) -> list[list[str]]:
    assert stack.pg is not None
    out = stack.pg.sql(service, sql)
    return [line.split("|") for line in out.splitlines() if line.strip()]


def check(stack: Stack) -> dict[str, dict[str, Any]]:
    """The invariants, from each service's own database."""
    result: dict[str, dict[str, Any]] = {}
    approved = {r[0]: Decimal(r[1]) for r in rows(stack, "claims",
        "SELECT id, aid_amount FROM claims WHERE status IN ('approved', 'paid', 'payment_failed') "
        "AND aid_amount > 0")}
    live = rows(stack, "payments", "SELECT claim_id, count(*), sum(amount) FROM payment_instructions WHERE adjustment_id = '' "
                                   "AND status IN ('pending', 'batched', 'paid') GROUP BY claim_id")
    live_by_claim = {r[0]: (int(r[1]), Decimal(r[2])) for r in live}
    wrong = [c for c, aid in approved.items() if live_by_claim.get(c) != (1, aid)]
    extra = [c for c in live_by_claim if c not in approved]
    result["one_live_instruction_per_approved_claim"] = {
        "ok": not wrong and not extra, "approved_claims": len(approved), "wrong": wrong[:20], "unexpected": extra[:20]}
    ledger = rows(stack, "payments", "SELECT coalesce(sum(p.amount), 0) FROM ledger_postings p JOIN ledger_entries e "
                                     "ON e.id = p.entry_id WHERE e.kind = 'aid_approved' AND p.amount > 0")
    sums = {"claims": f"{sum(approved.values(), Decimal('0')):.2f}",
            "instructions": f"{sum((v[1] for v in live_by_claim.values()), Decimal('0')):.2f}",
            "ledger_approved": f"{Decimal(ledger[0][0]):.2f}"}
    result["sums_match"] = {"ok": len(set(sums.values())) == 1, **sums}
    handled = handled_types()
    missing: dict[str, int] = {}
    delivered = 0
    for topic, publisher in PUBLISHER.items():
        events = rows(stack, publisher, f"SELECT event_id, type FROM outbox WHERE topic = '{topic}'")
        for group in CONSUMER_GROUPS[topic]:
            inbox = {r[0] for r in rows(stack, group, f"SELECT event_id FROM inbox WHERE consumer = '{group}'")}
            wanted = [e for e, t in events if t in handled[group]]
            delivered += len(wanted)
            lost = [e for e in wanted if e not in inbox]
            if lost:
                missing[f"{topic}->{group}"] = len(lost)
    result["every_event_reached_every_consumer_once"] = {"ok": not missing, "deliveries": delivered,
                                                         "missing": missing}
    scheduled = int(rows(stack, "notifications",
                         "SELECT count(*) FROM notifications WHERE template = 'payment_scheduled'")[0][0])
    created = int(rows(stack, "payments", "SELECT count(*) FROM payment_instructions")[0][0])
    messages = int(rows(stack, "notifications", "SELECT count(*) - count(DISTINCT source_event_id) "
                                                "FROM notifications")[0][0])
    result["no_duplicate_messages"] = {"ok": scheduled == created and messages == 0,
                                       "payment_scheduled_messages": scheduled, "instructions": created}
    unpublished = {s: int(rows(stack, s, "SELECT count(*) FROM outbox WHERE published_at IS NULL")[0][0])
                   for s in SERVICES}
    parked = {s: int(rows(stack, s, "SELECT count(*) FROM parked_events")[0][0]) for s in SERVICES}
    undecided = int(rows(stack, "claims", "SELECT count(*) FROM claims WHERE status IN ('submitted', 'in_review')")
                    [0][0])
    result["nothing_stuck"] = {"ok": not any(unpublished.values()) and not any(parked.values()) and not undecided,
                               "unpublished": unpublished, "parked": parked, "undecided_claims": undecided}
    return result


def settle(stack: Stack, timeout: float) -> tuple[dict[str, dict[str, Any]], float]:
    """Wait until every invariant holds (events travel asynchronously) or the time is up."""
    started = time.monotonic()
    error = ""
    while True:
        try:
            invariants = check(stack)
        except RuntimeError as exc:  # a database still recovering
            invariants, error = {}, str(exc)[:500]
        if invariants and all(v["ok"] for v in invariants.values()):
            return invariants, time.monotonic() - started
        if time.monotonic() - started > timeout:
            return invariants or {"settled": {"ok": False, "error": error}}, time.monotonic() - started
        time.sleep(1)


def run_chaos(home: Path, seed: int, duration: float, members: int = 20, settle_timeout: float = 180.0) -> Report:
    report = Report(seed=seed, duration=duration)
    started = time.monotonic()
    stack = Stack(home=home, pg_port=free_port(), kafka_port=free_port(),
                  ports={name: free_port() for name in SERVICES}, partitions=3)
    try:
        stack.start()
        api = Huzhu({name: stack.url(name) for name in SERVICES}, timeout=15)
        world = build_world(api, members, seed)
        stop = threading.Event()
        load = Load(api, world, seed, report)
        chaos = Chaos(stack, seed, report)
        supervising = threading.Event()
        supervisor = threading.Thread(target=chaos.supervise, args=(supervising,), daemon=True)
        threads = [threading.Thread(target=load.run, args=(stop,), daemon=True),
                   threading.Thread(target=chaos.run, args=(stop, duration), daemon=True)]
        supervisor.start()
        for t in threads:
            t.start()
        threads[1].join(duration + 120)
        stop.set()
        threads[0].join(180)
        report.invariants, report.settle_seconds = settle(stack, settle_timeout)
        supervising.set()
        supervisor.join(10)
    finally:
        stack.stop()
        report.wall_seconds = time.monotonic() - started
        report.broker_losses_noticed = losses_noticed(home)
    return report


def losses_noticed(home: Path) -> dict[str, int]:
    counts = {}
    for name in SERVICES:
        log = home / "logs" / f"{name}.log"
        text = log.read_text(errors="replace") if log.exists() else ""
        counts[name] = text.count("the broker lost our events")
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--duration", type=float, default=300.0, help="seconds of chaos")
    parser.add_argument("--members", type=int, default=20)
    parser.add_argument("--report", type=Path, default=Path("chaos-results/report.json"))
    args = parser.parse_args()
    home = Path(os.environ.get("HUZHU_CHAOS_HOME", f"/tmp/huzhu-chaos-{uuid.uuid4().hex[:8]}"))
    report = run_chaos(home, args.seed, args.duration, args.members)
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(json.dumps(report.as_dict(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
    raise SystemExit(0 if report.ok else 1)


if __name__ == "__main__":
    main()
