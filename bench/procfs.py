"""What the benches read of a process from /proc: its CPU seconds, its peak RSS, and the stack's PostgreSQL
processes."""

from __future__ import annotations

import os
from pathlib import Path

from deploy.localstack import Stack


def _stat(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def cpu_seconds(pids: set[int]) -> dict[int, float]:
    """User + system CPU seconds of each process (all its threads) from /proc."""
    out = {}
    for pid in pids:
        try:
            fields = _stat(pid)
        except OSError:
            continue
        out[pid] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return out


def peak_rss_mib(pid: int) -> float:
    """The process's own peak resident set (VmHWM; not getrusage's ru_maxrss, which for a process started from a
    large parent counts the pages it was forked with)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def postmaster_pid(stack: Stack) -> int:
    assert stack.pg is not None
    return int((stack.pg.data_dir / "postmaster.pid").read_text().split()[0])


def postgres_pids(stack: Stack) -> set[int]:
    """The postmaster of the stack's PostgreSQL and its children (backends, WAL writer, checkpointer...)."""
    postmaster = postmaster_pid(stack)
    pids = {postmaster}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int(_stat(int(entry.name))[1]) == postmaster:
                    pids.add(int(entry.name))
            except (OSError, ValueError):
                continue
    return pids


def postgres_cpu_seconds(stack: Stack) -> float:
    """CPU seconds of PostgreSQL so far: the postmaster, its live children, and those that ended (a backend's time
    moves to its parent's children's time when it exits, so backends that come and go are not lost)."""
    fields = _stat(postmaster_pid(stack))
    reaped = (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")  # cutime, cstime
    return sum(cpu_seconds(postgres_pids(stack)).values()) + reaped
