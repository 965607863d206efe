"""Claims bench (issue 4): the pure aid engine's throughput, and re-assessing a whole period after a rulebook
correction, in memory (1,000,000 claims) and through PostgreSQL (read, re-assess, write adjustments).

``run(database_url)`` returns the figures as a dict. Through-the-services figures (submission to in_review,
p50/p99) are measured by the HTTP bench the lead wires in ``bench/run.py``.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg

from services.claims.domain.aid import assess_banded, banded_aid
from services.claims.domain.reassess import reassess_banded_fast
from shared.rulebook import RULEBOOKS_DIR, BandedPlan, load_rulebook

ROOT = Path(__file__).resolve().parents[1]
ENGINE_CLAIMS = int(os.environ.get("BENCH_ENGINE_CLAIMS", "200000"))
PERIOD_CLAIMS = int(os.environ.get("BENCH_PERIOD_CLAIMS", "1000000"))
DB_CLAIMS = int(os.environ.get("BENCH_REASSESS_DB_CLAIMS", "200000"))
ZERO = Decimal("0.00")


def yunnan() -> BandedPlan:
    plan = load_rulebook((RULEBOOKS_DIR / "yunnan-18.yaml").read_text(encoding="utf-8")).plan("inpatient")
    assert isinstance(plan, BandedPlan)
    return plan


def corrected(plan: BandedPlan) -> BandedPlan:
    """A rulebook correction: the minimum aid was meant to be 120.00, not 100.00."""
    return plan.model_copy(update={"min_aid": Decimal("120.00")})


def period(count: int, seed: int = 4) -> list[tuple[int, Decimal]]:
    """``count`` stays of a period as (member, base), members with 1-4 stays, bases like Yunnan's claims."""
    rng = random.Random(seed)
    stays: list[tuple[int, Decimal]] = []
    member = 0
    while len(stays) < count:
        for _ in range(min(rng.choice((1, 1, 1, 2, 2, 3, 4)), count - len(stays))):
            fen = int(rng.lognormvariate(9.0, 1.0) * 100)  # median base ~8,100 CNY
            stays.append((member, Decimal(min(fen, 60_000_000)).scaleb(-2)))
        member += 1
    return stays


def engine_throughput(plan: BandedPlan, count: int) -> dict[str, Any]:
    bases = [base for _, base in period(count, seed=1)]
    started = time.perf_counter()
    for base in bases:
        assess_banded(plan, ZERO, base)
    explained = time.perf_counter() - started
    started = time.perf_counter()
    for base in bases:
        banded_aid(plan, ZERO, base)
    fast = time.perf_counter() - started
    return {"claims": count, "assess_banded_claims_per_s": round(count / explained),
            "banded_aid_claims_per_s": round(count / fast), "target_claims_per_s": 100_000}


def reassess_in_memory(plan: BandedPlan, count: int) -> dict[str, Any]:
    stays = period(count)
    by_member: dict[int, list[Decimal]] = defaultdict(list)
    for member, base in stays:
        by_member[member].append(base)
    current = {m: reassess_banded_fast(plan, bases) for m, bases in by_member.items()}
    fixed = corrected(plan)
    started = time.perf_counter()
    adjustments = 0
    top_ups = recoveries = ZERO
    for member, bases in by_member.items():
        for old, new in zip(current[member], reassess_banded_fast(fixed, bases), strict=True):
            if new != old:
                adjustments += 1
                if new > old:
                    top_ups += new - old
                else:
                    recoveries += old - new
    seconds = time.perf_counter() - started
    return {"claims": count, "members": len(by_member), "seconds": round(seconds, 2),
            "claims_per_s": round(count / seconds), "adjustments": adjustments,
            "top_ups": f"{top_ups:.2f}", "recoveries": f"{recoveries:.2f}"}


async def reassess_in_postgres(dsn: str, plan: BandedPlan, count: int) -> dict[str, Any]:
    """The DB path in bulk: stream the period's live claims ordered by member and submission, re-assess each
    member's stays, COPY the adjustments back. (The service's per-event path does the same per member.)"""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("DROP TABLE IF EXISTS bench_claims, bench_adjustments; "
                           "CREATE TABLE bench_claims (id bigint primary key, member_id bigint, seq int, "
                           "base numeric(14,2), aid_amount numeric(14,2)); "
                           "CREATE TABLE bench_adjustments (claim_id bigint, amount numeric(14,2), "
                           "aid_after numeric(14,2))")
        stays = period(count, seed=7)
        by_member: dict[int, list[Decimal]] = defaultdict(list)
        for member, base in stays:
            by_member[member].append(base)
        records = []
        claim_id = 0
        for member, bases in by_member.items():
            for seq, (base, aid) in enumerate(zip(bases, reassess_banded_fast(plan, bases), strict=True)):
                records.append((claim_id, member, seq, base, aid))
                claim_id += 1
        await conn.copy_records_to_table("bench_claims", records=records)
        await conn.execute("CREATE INDEX ON bench_claims (member_id, seq)")
        fixed = corrected(plan)
        started = time.perf_counter()
        adjustments: list[tuple[int, Decimal, Decimal]] = []
        async with conn.transaction():
            member_rows: list[asyncpg.Record] = []
            previous = None

            def flush(rows: list[asyncpg.Record]) -> None:
                new = reassess_banded_fast(fixed, [r["base"] for r in rows])
                for row, aid in zip(rows, new, strict=True):
                    if aid != row["aid_amount"]:
                        adjustments.append((row["id"], aid - row["aid_amount"], aid))

            async for row in conn.cursor("SELECT id, member_id, base, aid_amount FROM bench_claims "
                                         "ORDER BY member_id, seq", prefetch=10_000):
                if row["member_id"] != previous and member_rows:
                    flush(member_rows)
                    member_rows = []
                previous = row["member_id"]
                member_rows.append(row)
            if member_rows:
                flush(member_rows)
            await conn.copy_records_to_table("bench_adjustments", records=adjustments)
        seconds = time.perf_counter() - started
        return {"claims": count, "seconds": round(seconds, 2), "claims_per_s": round(count / seconds),
                "adjustments": len(adjustments),
                "projected_seconds_for_1m": round(seconds * 1_000_000 / count, 1)}
    finally:
        await conn.execute("DROP TABLE IF EXISTS bench_claims, bench_adjustments")
        await conn.close()


def run(database_url: str) -> dict[str, Any]:
    plan = yunnan()
    out: dict[str, Any] = {"engine": engine_throughput(plan, ENGINE_CLAIMS),
                           "reassess_period_in_memory": reassess_in_memory(plan, PERIOD_CLAIMS)}
    if database_url:
        dsn = database_url.replace("postgresql+asyncpg://", "postgresql://")
        out["reassess_period_postgres"] = asyncio.run(reassess_in_postgres(dsn, plan, DB_CLAIMS))
    out["through_services"] = "measured by the HTTP bench in bench/run.py (submission -> in_review, p50/p99)"
    return out


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(run(sys.argv[1] if len(sys.argv) > 1 else ""), indent=2, ensure_ascii=False))
