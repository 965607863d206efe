"""``make bench``: speed figures, written to ``bench-results/bench.json`` (never asserted in tests: these
machines are shared and noisy; compare ratios within one run). Roster uploads (issue #3), the claims engine
and re-assessment (issue #4), claims through the running services, and a 100,000-line payment batch (#5);
the bureau's 1,000,000-record settlement feed, gzip NDJSON uploaded to the claims service (#12,
``bench/settlement_feed.py``).

Enrollment (issue #3): a 200,000-row CSV roster and a 50,000-row XLSX roster, upload to stored with every
check done, against PostgreSQL ``COPY`` of the same rows into a plain table in the same run as the reference.
The previous period's history (issue #8): 100,000 rows imported, again, and a roster renewing from it
(``bench/history_import.py``).
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import time
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from bench import claims as claims_engine_bench
from bench import claims_http as claims_bench
from bench import claims_period as claims_period_bench
from bench import history_import as history_bench
from bench import logins as logins_bench
from bench import payments as payments_bench
from bench import settlement_feed as feed_bench
from bench.people import rows
from bench.roster_upload import Uploader
from deploy.infra import free_port, wipe
from deploy.localstack import SERVICES, Stack
from shared.rulebook import RULEBOOKS_DIR

ROOT = Path(__file__).resolve().parents[1]
CSV_ROWS = int(os.environ.get("BENCH_CSV_ROWS", "200000"))
XLSX_ROWS = int(os.environ.get("BENCH_XLSX_ROWS", "50000"))
CLAIM_MEMBERS = int(os.environ.get("BENCH_CLAIM_MEMBERS", "200"))
CLAIMS = int(os.environ.get("BENCH_CLAIMS", "2000"))
PERIOD_CLAIMS = int(os.environ.get("BENCH_PERIOD_CLAIMS", "1000000"))
HISTORY_ROWS = int(os.environ.get("BENCH_HISTORY_ROWS", "100000"))


async def copy_reference(dsn: str, count: int) -> float:
    """The floor: the same rows COPYed into a plain table, no parsing, no checks, no indexes."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("DROP TABLE IF EXISTS copy_reference; CREATE TABLE copy_reference (name text, "
                           "certno text, phone text, sex text, member_type text, bank_account text, "
                           "bank_name text, insurance text)")
        records = list(rows(count))
        started = time.perf_counter()
        await conn.copy_records_to_table("copy_reference", records=records)
        return time.perf_counter() - started
    finally:
        await conn.close()


def main() -> None:
    out_dir = ROOT / "bench-results"
    out_dir.mkdir(exist_ok=True)
    home = Path(os.environ.get("BENCH_HOME", "/tmp/huzhu-bench"))
    wipe(home)
    stack = Stack(home=home, pg_port=free_port(), kafka_port=free_port(),
                  ports={name: free_port() for name in SERVICES}, partitions=3)
    try:
        stack.start_infra()
        stack.start_service("enrollment")
        stack.wait_ready(["enrollment"])
        logins = logins_bench.run(stack.url("enrollment"))
        uploader = Uploader(stack, RULEBOOKS_DIR / "yunnan-18.yaml")
        csv = uploader.upload("csv", CSV_ROWS, 0)
        xlsx = uploader.upload("xlsx", XLSX_ROWS, CSV_ROWS)
        history = history_bench.run(stack, RULEBOOKS_DIR / "yunnan-18.yaml", HISTORY_ROWS)
        copy_seconds = asyncio.run(copy_reference(stack.database_url("enrollment").replace(
            "postgresql+asyncpg", "postgresql"), CSV_ROWS))
        assert stack.pg is not None
        stack.pg.create_database("bench_scratch")
        claims_engine = claims_engine_bench.run(stack.pg.url("bench_scratch"))
        stack.pg.create_database("bench_period")
        period_correction = claims_period_bench.run(stack.pg.url("bench_period"), PERIOD_CLAIMS)
        stack.pg.create_database("bench_payments")
        payments_batch = payments_bench.run(stack.pg.url("bench_payments"))
        for name in ("claims", "payments", "notifications"):
            stack.start_service(name)
        stack.wait_ready()
        claims_http = claims_bench.run(stack, CLAIM_MEMBERS, CLAIMS)
        settlement_feed = feed_bench.run(stack, feed_bench.bench_certnos(CLAIM_MEMBERS))
    finally:
        stack.stop()
    copy_rate = CSV_ROWS / copy_seconds
    result = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "roster_csv": csv,
        "roster_xlsx": xlsx,
        "history_import": history,
        "postgres_copy_reference": {"rows": CSV_ROWS, "seconds": round(copy_seconds, 3),
                                    "rows_per_second": round(copy_rate)},
        "csv_upload_vs_copy": round(float(str(csv["rows_per_second"])) / copy_rate, 3),
        "target": {"csv_rows_per_second": 50000, "server_peak_rss_mib": 1024},
        "claims_engine": claims_engine,
        "claims_period_correction_through_the_service": period_correction,
        "payments_batch_100k": payments_batch,
        "claims_http_submission_to_in_review": claims_http,
        "settlement_feed_1m": settlement_feed,
        "login_timing": logins,
    }
    (out_dir / "bench.json").write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n")
    print(json.dumps(result, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
