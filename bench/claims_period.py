"""Re-assessing a whole period of claims after a rulebook correction, end to end through the claims service's
own code: a corrected ``period.published`` (revision 2: min_aid 100 -> 120) applied by the service's consumer
path (inbox + handler, one transaction) to a claims database holding the period's claims, approved and
consistent with the first revision. Reports seconds, adjustments and the outbox rows announced to payments.

Usage: python -m bench.claims_period DATABASE_URL CLAIMS -> one JSON line."""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
import uuid
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg

from services.claims.app import spec
from services.claims.domain.reassess import reassess_banded_fast
from shared.db import Database
from shared.events import PeriodPublished
from shared.messaging import Consumer
from shared.migrate import upgrade
from shared.rulebook import RULEBOOKS_DIR, BandedPlan, load_rulebook
from shared.settings import ClaimsSettings

ROOT = Path(__file__).resolve().parents[1]
RULEBOOK = RULEBOOKS_DIR / "yunnan-18.yaml"
PERIOD = "bench-period"


def document(min_aid: str) -> dict[str, Any]:
    doc = load_rulebook(RULEBOOK.read_bytes()).to_document()
    doc["code"] = PERIOD
    doc["plans"][0]["min_aid"] = min_aid
    return doc


async def seed(dsn: str, count: int) -> None:
    plan = load_rulebook(RULEBOOK.read_bytes()).plan("inpatient")
    assert isinstance(plan, BandedPlan)
    rng = random.Random(11)
    members = max(1, count // 2)
    by_member: dict[int, list[Decimal]] = defaultdict(list)
    for _ in range(count):
        by_member[rng.randrange(members)].append(Decimal(rng.randrange(50_000, 3_000_000)) / 100)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    records, i = [], 0
    for member, bases in by_member.items():
        for base, aid in zip(bases, reassess_banded_fast(plan, bases), strict=True):
            records.append((uuid.uuid4(), f"M{member}", PERIOD, "inpatient", "approved", f"S{i}", "21",
                            date(2026, 3, 1), date(2026, 3, 9), "{}", "{}", "bench", base, aid, aid, PERIOD,
                            start + timedelta(seconds=i), ["C", "O", "A", "U"], ["agency_point", "office"]))
            i += 1
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("INSERT INTO periods (code, rulebook, revision) VALUES ($1, $2, 1)", PERIOD,
                           json.dumps(document("100.00")))
        await conn.copy_records_to_table("claims", records=records, columns=(
            "id", "member_id", "period", "plan", "status", "setl_id", "med_type", "admission_date",
            "discharge_date", "diagnosis", "settlement", "submitted_by", "base", "aid_amount", "assessed_aid",
            "rulebook_code", "created_at", "unit_path", "review_path"))
        await conn.execute("ANALYZE claims")
    finally:
        await conn.close()


async def correct(database_url: str) -> dict[str, Any]:
    settings = ClaimsSettings(local_stack=True, database_url=database_url)
    service = spec(settings)
    db = Database(database_url, 4)
    consumer = Consumer(name="claims", db=db, tables=service.tables, handlers=service.handlers, topics=[],
                        bootstrap="unused", producer=None)
    event = PeriodPublished(period=PERIOD, rulebook=document("120.00"), revision=2, reason="最低补助标准调整为120元")
    started = time.perf_counter()
    await consumer.apply(event.envelope(), event)
    seconds = time.perf_counter() - started
    await db.dispose()
    conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg", "postgresql"))
    try:
        adjustments = await conn.fetchval("SELECT count(*) FROM claim_adjustments WHERE cause = 'rulebook_correction'")
        announced = await conn.fetchval("SELECT count(*) FROM outbox WHERE type = 'claim.adjusted'")
        total = await conn.fetchval("SELECT sum(amount) FROM claim_adjustments")
    finally:
        await conn.close()
    return {"seconds": round(seconds, 2), "adjustments": adjustments, "claim_adjusted_events": announced,
            "net_adjustment": str(total)}


def run(database_url: str, count: int) -> dict[str, Any]:
    upgrade(ROOT / "services" / "claims" / "migrations", database_url)
    dsn = database_url.replace("postgresql+asyncpg", "postgresql")
    seeding = time.perf_counter()
    asyncio.run(seed(dsn, count))
    seeded = time.perf_counter() - seeding
    result = asyncio.run(correct(database_url))
    return {"claims": count, "seed_seconds": round(seeded, 1), **result,
            "claims_per_second": round(count / result["seconds"])}


if __name__ == "__main__":
    print(json.dumps(run(sys.argv[1], int(sys.argv[2])), ensure_ascii=False))
