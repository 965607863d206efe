"""``make bench``: speed figures, written to ``bench-results/bench.json`` (never asserted in tests: these
machines are shared and noisy; compare ratios within one run). Roster uploads (issue #3), the claims engine
and re-assessment (issue #4), claims through the running services, and a 100,000-line payment batch (#5);
the bureau's 1,000,000-record settlement feed, gzip NDJSON uploaded to the claims service (#12,
``bench/settlement_feed.py``).

Enrollment (issue #3): a 200,000-row CSV roster and a 50,000-row XLSX roster, upload to stored with every
check done, against PostgreSQL ``COPY`` of the same rows into a plain table in the same run as the reference.
The previous period's history (issue #8): 100,000 rows imported, again, and a roster renewing from it
(``bench/history_import.py``).

``BENCH_ONLY=payments,claims_http make bench`` (any of ``PARTS``) runs only those parts and merges their figures
into the existing ``bench.json``.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal
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
from services.enrollment.rosters import ENROLMENT_COLUMNS, MEMBER_COLUMNS
from shared.rulebook import RULEBOOKS_DIR

ROOT = Path(__file__).resolve().parents[1]
CSV_ROWS = int(os.environ.get("BENCH_CSV_ROWS", "200000"))
XLSX_ROWS = int(os.environ.get("BENCH_XLSX_ROWS", "50000"))
CLAIM_MEMBERS = int(os.environ.get("BENCH_CLAIM_MEMBERS", "200"))
CLAIMS = int(os.environ.get("BENCH_CLAIMS", "2000"))
PERIOD_CLAIMS = int(os.environ.get("BENCH_PERIOD_CLAIMS", "1000000"))
HISTORY_ROWS = int(os.environ.get("BENCH_HISTORY_ROWS", "100000"))
# The 200,000-row roster is ~21-28 MiB, over the production default of 20 MiB a roster file
# (shared/settings.py max_roster_bytes): the bench's enrollment takes up to 64 MiB, as a province's office would set.
ENROLLMENT_ENV = {"ENROLLMENT_MAX_ROSTER_BYTES": str(64 * 1024 * 1024)}
# BENCH_ONLY=payments,claims_http runs only those parts and merges their figures into the existing bench.json.
PARTS = ("logins", "roster_csv", "roster_xlsx", "history_import", "claims_engine", "claims_period", "payments",
         "claims_http", "settlement_feed")
ONLY = {part.strip() for part in os.environ.get("BENCH_ONLY", "").split(",") if part.strip()}
if ONLY - set(PARTS):
    raise SystemExit(f"BENCH_ONLY: unknown part(s) {sorted(ONLY - set(PARTS))}; parts: {', '.join(PARTS)}")


def wanted(part: str) -> bool:
    return not ONLY or part in ONLY


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


async def stored_shape_reference(dsn: str, count: int) -> float:
    """The floor of what the roster stores: the same people COPYed (binary, prepared in advance, ids ascending as
    the upload makes them) into tables shaped like ``members`` and ``enrolments`` (their keys, unique ID number,
    indexes and the enrolments' key to members), in one transaction, nothing checked or computed. The upload's time
    over this says what the checks and the service cost; this over the plain COPY says what storing them does."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "DROP TABLE IF EXISTS reference_enrolments; DROP TABLE IF EXISTS reference_members; "
            "CREATE TABLE reference_members (LIKE members INCLUDING ALL); "
            "CREATE TABLE reference_enrolments (LIKE enrolments INCLUDING ALL); "
            "ALTER TABLE reference_enrolments ADD FOREIGN KEY (member_id) REFERENCES reference_members (id)")
        now, roster = datetime.now(UTC), uuid.uuid4()
        base = uuid.uuid4().int & ~((1 << 64) - 1)
        people = list(rows(count))
        members = [(uuid.UUID(int=base + i), row[1], row[0], "male" if row[3] == "男" else "female", row[2],
                    "in_service", row[5], row[6], "REF", now) for i, row in enumerate(people)]
        enrolments = [("reference", member[0], roster, "REF", ["inpatient"], ["basic", "serious_illness"], False,
                       Decimal("150.00"), "pending", 1) for member in members]
        started = time.perf_counter()
        async with conn.transaction():
            await conn.copy_records_to_table("reference_members", records=members, columns=list(MEMBER_COLUMNS))
            await conn.copy_records_to_table("reference_enrolments", records=enrolments,
                                             columns=list(ENROLMENT_COLUMNS))
        return time.perf_counter() - started
    finally:
        await conn.execute("DROP TABLE IF EXISTS reference_enrolments; DROP TABLE IF EXISTS reference_members")
        await conn.close()


def main() -> None:
    out_dir = ROOT / "bench-results"
    out_dir.mkdir(exist_ok=True)
    home = Path(os.environ.get("BENCH_HOME", "/tmp/huzhu-bench"))
    wipe(home)
    stack = Stack(home=home, pg_port=free_port(), kafka_port=free_port(),
                  ports={name: free_port() for name in SERVICES}, partitions=3)
    figures: dict[str, object] = {}
    try:
        stack.start_infra()
        if wanted("logins") or wanted("roster_csv") or wanted("roster_xlsx") or wanted("history_import"):
            stack.start_service("enrollment", ENROLLMENT_ENV)
            stack.wait_ready(["enrollment"])
        if wanted("logins"):
            figures["login_timing"] = logins_bench.run(stack.url("enrollment"))
        if wanted("roster_csv") or wanted("roster_xlsx"):
            uploader = Uploader(stack, RULEBOOKS_DIR / "yunnan-18.yaml")
        if wanted("roster_csv"):
            csv = uploader.upload("csv", CSV_ROWS, 0)
            figures["roster_csv"] = csv
        if wanted("roster_xlsx"):
            claims_bench.settle(stack)  # the CSV's 200,000 rows' autovacuum first
            figures["roster_xlsx"] = uploader.upload("xlsx", XLSX_ROWS, CSV_ROWS)
        if wanted("history_import"):
            claims_bench.settle(stack)
            figures["history_import"] = history_bench.run(stack, RULEBOOKS_DIR / "yunnan-18.yaml", HISTORY_ROWS)
        if wanted("roster_csv"):
            claims_bench.settle(stack)
            copy_seconds = asyncio.run(copy_reference(stack.database_url("enrollment").replace(
                "postgresql+asyncpg", "postgresql"), CSV_ROWS))
            copy_rate = CSV_ROWS / copy_seconds
            figures["postgres_copy_reference"] = {"rows": CSV_ROWS, "seconds": round(copy_seconds, 3),
                                                  "rows_per_second": round(copy_rate)}
            figures["csv_upload_vs_copy"] = round(float(str(csv["rows_per_second"])) / copy_rate, 3)
            stored_seconds = asyncio.run(stored_shape_reference(stack.database_url("enrollment").replace(
                "postgresql+asyncpg", "postgresql"), CSV_ROWS))
            figures["postgres_copy_into_stored_shape"] = {
                "rows": CSV_ROWS, "seconds": round(stored_seconds, 3),
                "rows_per_second": round(CSV_ROWS / stored_seconds),
                "vs_plain_copy": round(copy_seconds / stored_seconds, 3),
                "csv_upload_vs_it": round(float(str(csv["rows_per_second"])) * stored_seconds / CSV_ROWS, 3)}
        assert stack.pg is not None
        if wanted("claims_engine"):
            stack.pg.create_database("bench_scratch")
            figures["claims_engine"] = claims_engine_bench.run(stack.pg.url("bench_scratch"))
            stack.pg.drop_database("bench_scratch")  # measured: no autovacuum of it under the parts after
        if wanted("claims_period"):
            stack.pg.create_database("bench_period")
            figures["claims_period_correction_through_the_service"] = claims_period_bench.run(
                stack.pg.url("bench_period"), PERIOD_CLAIMS)
            stack.pg.drop_database("bench_period")
        if wanted("payments"):
            stack.pg.create_database("bench_payments")
            figures["payments_batch_100k"] = payments_bench.run(stack.pg.url("bench_payments"))
            stack.pg.drop_database("bench_payments")
        if wanted("claims_http") or wanted("settlement_feed"):
            if "enrollment" not in stack.procs:
                stack.start_service("enrollment", ENROLLMENT_ENV)
            for name in ("claims", "payments", "notifications"):
                stack.start_service(name)
            stack.wait_ready()
            claims_bench.settle(stack)  # the roster and history tables' autovacuum, before anything is timed
        if wanted("claims_http"):
            figures["claims_http_submission_to_in_review"] = claims_bench.run(stack, CLAIM_MEMBERS, CLAIMS)
        if wanted("settlement_feed"):
            claims_bench.settle(stack)  # the claims runs' messages are still going out (SMS, receipts): wait
            # the members of claims_http's world; made here when that part did not run (BENCH_ONLY)
            certnos = feed_bench.bench_certnos(CLAIM_MEMBERS) if wanted("claims_http") else \
                feed_bench.world_certnos(stack, CLAIM_MEMBERS)
            figures["settlement_feed_1m"] = feed_bench.run(stack, certnos)
    finally:
        stack.stop()
    out = out_dir / "bench.json"
    result: dict[str, object] = json.loads(out.read_text()) if ONLY and out.exists() else {}
    result.update({
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "target": {"csv_rows_per_second": 50000, "server_peak_rss_mib": 1024},
        **figures,
    })
    if ONLY:
        result["last_run_parts"] = sorted(ONLY)
    out.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n")
    print(json.dumps(result, ensure_ascii=False, indent=2))

if __name__ == "__main__":
    main()
