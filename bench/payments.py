"""Payments bench (issue 5 "Speed"): cut, validate and write a batch of 100,000 payment instructions.

``run(database_url)`` migrates the payments schema, then runs the measurement in a process of its own (so the
peak resident memory reported is the batch's own): 100,000 pending instructions are COPYed in (not timed), then
the real endpoint cuts them into one pain.001 batch over ASGI (``FOR UPDATE SKIP LOCKED``, the file built and
validated against the official XSD, stored), a second officer releases it, and the file is fetched and written
to disk. Usage on its own: ``python -m bench.payments DATABASE_URL [COUNT]``.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from decimal import Decimal
from pathlib import Path

import asyncpg
import httpx

from bench.procfs import peak_rss_mib

ROOT = Path(__file__).resolve().parents[1]
COUNT = int(os.environ.get("BENCH_PAYMENT_INSTRUCTIONS", "100000"))


def run(database_url: str) -> dict[str, object]:
    from shared.migrate import upgrade

    upgrade(ROOT / "services" / "payments" / "migrations", database_url)
    done = subprocess.run([sys.executable, "-m", "bench.payments", database_url, str(COUNT)], cwd=ROOT,
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"payments bench failed:\n{done.stderr[-3000:]}{done.stdout[-2000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


async def seed(dsn: str, count: int) -> Decimal:
    rng = random.Random(5)
    total = Decimal("0.00")
    records = []
    for n in range(count):
        amount = Decimal(rng.randint(10_000, 5_000_000)) / 100
        total += amount
        records.append((uuid.uuid4(), f"bench-{n}", "aid", "", 1, f"BM{n:07d}", "bench", amount, "张伟",
                        f"6222{rng.randint(10**14, 10**15 - 1)}", "中国工商银行昆明五华支行", "pending"))
    conn = await asyncpg.connect(dsn)
    try:
        await conn.copy_records_to_table("payment_instructions", records=records, columns=[
            "id", "claim_id", "kind", "adjustment_id", "attempt", "member_id", "period", "amount", "payee_name",
            "account", "bank_name", "status"])
    finally:
        await conn.close()
    return total


async def measure(database_url: str, count: int) -> dict[str, object]:
    from services.payments.app import spec
    from shared.auth import Principal, issue_token
    from shared.service import build_app
    from shared.settings import DEV_JWT_SECRET, PaymentsSettings

    def token_for(role: str, org: str) -> dict[str, str]:
        who = Principal(user_id=str(uuid.uuid4()), username=f"bench-{role}", role=role, org=org, org_level="centre",
                        org_path=(org,))
        return {"Authorization": f"Bearer {issue_token(who, DEV_JWT_SECRET, 3600)}"}

    dsn = database_url.replace("postgresql+asyncpg", "postgresql")
    seeded_total = await seed(dsn, count)
    app = build_app(spec(PaymentsSettings(local_stack=True, database_url=database_url)), run_workers=False)
    cutter, releaser = token_for("finance", "YN"), token_for("finance", "YN")
    async with app.router.lifespan_context(app):
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://payments", timeout=900)
        started = time.perf_counter()
        r = await client.post("/api/v1/payment-batches", json={"format": "pain001"}, headers=cutter)
        cut_seconds = time.perf_counter() - started
        if r.status_code != 201:
            raise SystemExit(f"cut failed: {r.status_code} {r.text[:2000]}")
        batch = r.json()
        released = time.perf_counter()
        r = await client.post(f"/api/v1/payment-batches/{batch['batch_id']}/release", headers=releaser)
        release_seconds = time.perf_counter() - released  # with the lines' events (payment.batch_lines_released)
        if r.status_code != 200:
            raise SystemExit(f"release failed: {r.status_code} {r.text[:2000]}")
        fetched = time.perf_counter()
        f = await client.get(f"/api/v1/payment-batches/{batch['batch_id']}/file", headers=cutter)
        out = Path(tempfile.gettempdir()) / f"huzhu-bench-{batch['batch_id']}.xml"
        out.write_bytes(f.content)
        write_seconds = time.perf_counter() - fetched
        total_seconds = time.perf_counter() - started
        await client.aclose()
    size_mib = out.stat().st_size / 2**20
    out.unlink()
    return {"instructions": batch["count"], "format": "pain.001.001.09", "control_sum": batch["total"],
            "control_sum_matches": batch["total"] == f"{seeded_total:.2f}", "file_mib": round(size_mib, 1),
            "cut_build_validate_store_seconds": round(cut_seconds, 3), "fetch_write_seconds": round(write_seconds, 3),
            "release_seconds": round(release_seconds, 3),
            "seconds": round(total_seconds, 3), "instructions_per_second": round(count / total_seconds),
            "peak_rss_mib": round(peak_rss_mib(os.getpid()))}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(measure(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else COUNT)),
                     ensure_ascii=False))
