"""The bureau's settlement feed at scale (issue #12): 1,000,000 records of the national 2304 ``setlinfo`` fields
as one gzip-compressed NDJSON file, uploaded (multipart ``file``) to the running claims service by a bureau
user, timed from the first byte sent to the answer; then the same file again (all duplicates: nothing
changes). The records are of the bench world's covered members, with one in twenty of people who are not
members (counted, not kept) and one in a thousand malformed (refused with their line). Peak RSS of the claims
process is read from /proc (VmHWM) before and after, and the CPU seconds the claims process and PostgreSQL spent
on the first upload (the figure that holds when other work shares the machine's cores: see load_average_1m).

In ``make bench`` (bench/run.py, into bench-results/bench.json as ``settlement_feed_1m``), or alone:
``python -m bench.settlement_feed`` (its own stack, enrollment and claims only; BENCH_FEED_RECORDS to change
the count), into bench-results/settlement_feed.json with the machine's load average at the start."""

from __future__ import annotations

import gzip
import os
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from bench.people import name, unique_certno
from bench.procfs import cpu_seconds, peak_rss_mib, postgres_pids
from deploy.client import Huzhu
from deploy.localstack import SERVICES, Stack

RECORDS = int(os.environ.get("BENCH_FEED_RECORDS", "1000000"))


def write_feed(path: Path, certnos: list[str], count: int) -> int:
    """The feed file; its size in bytes."""
    tag = uuid.uuid4().hex[:8]
    day0 = date.today() - timedelta(days=60)
    with gzip.open(path, "wt", encoding="utf-8", compresslevel=6) as out:
        for i in range(count):
            if i % 1000 == 999:
                out.write(f'{{"setl_id": "F{tag}{i:08d}", "certno": "{certnos[0][:17]}0", "insutype": "310", '
                          f'"med_type": "21", "setl_time": "2026-13-01 10:00:00", "medfee_sumamt": "1x"}}\n')
                continue
            certno = unique_certno(90_000_000 + i) if i % 20 == 7 else certnos[i % len(certnos)]
            psn = Decimal(1000 + (i * 7919) % 40000) + Decimal(i % 100) / 100
            fund = psn * 2
            own = (psn / 10).quantize(Decimal("0.01"))
            acct = (psn / 4).quantize(Decimal("0.01"))
            ended = day0 + timedelta(days=i % 50)
            began = ended - timedelta(days=3 + i % 9)
            out.write(
                f'{{"setl_id": "F{tag}{i:08d}", "mdtrt_id": "M{tag}{i:08d}", "psn_no": "P{i:010d}", '
                f'"psn_name": "{name(i)}", "psn_cert_type": "01", "certno": "{certno}", '
                f'"insutype": "{"310" if i % 3 else "390"}", "med_type": "{"21" if i % 11 else "22"}", '
                f'"setl_time": "{ended} 1{i % 10}:2{i % 10}:00", "begndate": "{began}", "enddate": "{ended}", '
                f'"fixmedins_code": "H53010{i % 97:05d}", "fixmedins_name": "昆明医科大学第一附属医院", '
                f'"medfee_sumamt": "{fund + psn:.2f}", "fulamt_ownpay_amt": "{own:.2f}", '
                f'"inscp_scp_amt": "{fund + psn - own:.2f}", "hifp_pay": "{fund:.2f}", '
                f'"fund_pay_sumamt": "{fund:.2f}", "psn_part_amt": "{psn:.2f}", "acct_pay": "{acct:.2f}", '
                f'"psn_cash_pay": "{psn - acct:.2f}", "refd_setl_flag": "0"}}\n')
    return path.stat().st_size


def upload(url: str, token: str, path: Path) -> tuple[float, dict[str, Any]]:
    with open(path, "rb") as handle, httpx.Client(base_url=url, timeout=900) as http:
        started = time.perf_counter()
        r = http.post("/api/v1/settlements", headers={"Authorization": f"Bearer {token}"},
                      files={"file": ("setlinfo-20261123.ndjson.gz", handle, "application/gzip")})
        seconds = time.perf_counter() - started
    if r.status_code != 200:
        raise SystemExit(f"feed failed: {r.status_code} {r.text[:2000]}")
    return seconds, r.json()


def run(stack: Stack, certnos: list[str], count: int = RECORDS) -> dict[str, Any]:
    api = Huzhu({n: stack.url(n) for n in SERVICES})
    admin = api.login("admin", "admin")
    admin.post("enrollment", "/api/v1/users", json={"username": "qbureau", "password": "bench-password",
                                                     "role": "bureau", "org": "QC"})
    token = api.login("qbureau", "bench-password").token
    pid = stack.procs["claims"].pid
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "setlinfo.ndjson.gz"
        size = write_feed(path, certnos, count)
        rss_before = peak_rss_mib(pid)
        pg_before = cpu_seconds(postgres_pids(stack))
        claims_before = cpu_seconds({pid})[pid]
        seconds, first = upload(stack.url("claims"), token, path)
        rss_after = peak_rss_mib(pid)
        claims_cpu = cpu_seconds({pid})[pid] - claims_before
        pg_after = cpu_seconds(postgres_pids(stack) | set(pg_before))
        pg_cpu = sum(v - pg_before.get(p, 0.0) for p, v in pg_after.items())
        again_seconds, again = upload(stack.url("claims"), token, path)
    return {"records": count, "file": "NDJSON, gzip, multipart upload", "file_mib": round(size / 2**20, 1),
            "seconds": round(seconds, 2), "records_per_second": round(count / seconds),
            "target_records_per_second": 17000,
            "answer": {k: first[k] for k in ("received", "accepted", "duplicates", "not_members", "reversals",
                                             "rejected_count")},
            "claims_peak_rss_mib_before": round(rss_before), "claims_peak_rss_mib_after": round(rss_after),
            "cpu_seconds": {"claims": round(claims_cpu, 1), "postgresql": round(pg_cpu, 1)},
            "same_file_again": {"seconds": round(again_seconds, 2), "accepted": again["accepted"],
                                "duplicates": again["duplicates"]}}


def main() -> None:
    import json

    from deploy.infra import free_port, wipe

    home = Path(os.environ.get("BENCH_HOME", "/tmp/huzhu-bench-feed"))
    wipe(home)
    stack = Stack(home=home, pg_port=free_port(), kafka_port=free_port(),
                  ports={n: free_port() for n in SERVICES}, partitions=3)
    try:
        stack.start_infra()
        for n in ("enrollment", "claims"):
            stack.start_service(n)
        stack.wait_ready(["enrollment", "claims"])
        certnos = world_certnos(stack)
        result = {"measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
                  "machine": {"cpus": os.cpu_count(), "load_average_1m": round(os.getloadavg()[0], 2)},
                  "settlement_feed": run(stack, certnos)}
        out = Path(__file__).resolve().parents[1] / "bench-results" / "settlement_feed.json"
        out.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n")
        print(json.dumps(result, ensure_ascii=False, indent=2))
    finally:
        stack.stop()


def bench_certnos(members: int) -> list[str]:
    """The certnos of the members bench/claims_http.py's ``setup_world`` covered (its roster starts at 7,000,000)."""
    return [unique_certno(7_000_000 + i) for i in range(members)]


def world_certnos(stack: Stack, members: int = 200) -> list[str]:
    """The bench world of bench/claims_http.py (centre QC ... unit QU), its members' certnos."""
    from bench.claims_http import setup_world

    setup_world(stack, members)
    return bench_certnos(members)


if __name__ == "__main__":
    main()
