"""The bureau feed stored (issue #12 item 1): records checked as columns a block at a time
(domain/feed_columns.py), those not plainly sound one by one (domain/feed.py), written in batches.

Each batch of sound settlements costs one statement whatever its size (WRITE_SQL): the receipts
(feed_receipts: a digest of the setl_id with the day, scheme and two sums, for the daily totals; no person), and
one ``INSERT ... SELECT FROM unnest(...) ON CONFLICT DO NOTHING`` of the records of members in the caller's
branch (claims' Coverage copy of enrollment; a setl_id already kept is a duplicate: the same file sent again
changes nothing). A batch is written while the next is read and checked. Reversals are rare and
each touches claims: they go one at a time through reversals.py, after the batch before them is written, so a
file holding a settlement and then its reversal reverses it.

The whole feed is one transaction (one commit point, shared/deps.py): a feed cut off half-way stores nothing,
and sending it again stores it all.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

import polars as pl
from sqlalchemy import func, or_, select
from sqlalchemy.dialects.postgresql import distinct_on, insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.claims.domain.bureau import exclusion
from services.claims.domain.feed import Refusal, check_record
from services.claims.domain.feed_columns import Sound, sound_rows
from services.claims.models import BureauTotal, Claim, Coverage, FeedReceipt, Settlement
from services.claims.settlements.reading import Item, Lines
from services.claims.settlements.reversals import receive_reversal
from services.claims.settlements.straight_through import Outcome, after_batch
from shared.auth import Principal
from shared.db import driver_connection
from shared.masking import mask_certno
from shared.scope import array_in_branch

BATCH = 10000
MAX_REJECTED = 1000  # the first refusals are listed, all are counted

# One statement, one round trip per batch: the day's receipts of every sound record, and the records of people
# covered in the caller's branch ($13: NULL for the admin) that are not kept yet; it answers how many were
# kept and how many were members'. The batch's arrays are sent once.
WRITE_SQL = """
WITH members AS (
  SELECT DISTINCT certno FROM coverages
  WHERE certno = ANY($3::varchar[])
    AND ($12::varchar[] IS NULL OR unit_path[1:cardinality($12::varchar[])] = $12::varchar[])),
receipts AS (
  INSERT INTO feed_receipts (sender_org, digest, setl_date, insutype, medfee_sumamt, psn_part_amt)
  SELECT $1, g, d, i, f::numeric, p::numeric FROM unnest($11::bytea[], $6::date[], $7::varchar[], $9::text[],
                                                          $10::text[]) AS r(g, d, i, f, p)
  ON CONFLICT DO NOTHING),
kept AS (
  INSERT INTO settlements (setl_id, certno, record, mdtrt_id, is_reversal, setl_date, insutype, med_type,
                          medfee_sumamt, psn_part_amt)
  SELECT s, c, convert_from(r, 'UTF8')::jsonb, m, false, d, i, t, f::numeric, p::numeric
  FROM unnest($2::varchar[], $3::varchar[], $4::bytea[], $5::varchar[], $6::date[], $7::varchar[], $8::varchar[],
              $9::text[], $10::text[]) AS x(s, c, r, m, d, i, t, f, p)
  WHERE x.c IN (SELECT certno FROM members)
    AND NOT EXISTS (SELECT 1 FROM settlements k WHERE k.setl_id = x.s)  -- a resend: its JSON is not even parsed
  ON CONFLICT (setl_id) DO NOTHING
  RETURNING 1)
SELECT (SELECT count(*) FROM kept) AS kept,
       (SELECT count(*) FROM unnest($3::varchar[]) AS c WHERE c IN (SELECT certno FROM members)) AS of_members
"""


@dataclass
class Tally:
    received: int = 0
    accepted: int = 0
    duplicates: int = 0
    not_members: int = 0
    reversals: int = 0
    rejected_total: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)
    claims_reversed: list[str] = field(default_factory=list)
    # what the stored records did to claims: unverified claims checked, auto_claim claims made (issue #12)
    claims: Outcome = field(default_factory=Outcome)

    def refuse(self, line: int | None, index: int, refusal: Refusal) -> None:
        self.rejected_total += 1
        if len(self.rejected) < MAX_REJECTED:
            entry: dict[str, Any] = {"line": line, "index": index, "field": refusal.field, "code": refusal.code,
                                     "reason": refusal.reason}
            if refusal.errors:
                entry["errors"] = [{**e, "loc": ["records", index, *e["loc"]]} for e in refusal.errors]  # type: ignore[misc]
            self.rejected.append(entry)


def digest(setl_id: str) -> bytes:
    return hashlib.blake2b(setl_id.encode(), digest_size=16).digest()


async def write_batch(conn: Any, actor: Principal, batch: Sound, tally: Tally) -> None:
    branch = None if actor.role == "admin" else list(actor.branch)
    row = await conn.fetchrow(WRITE_SQL, actor.org, batch.setl_id, batch.certno, batch.record, batch.mdtrt_id,
                              batch.setl_date, batch.insutype, batch.med_type, batch.medfee_sumamt,
                              batch.psn_part_amt, [digest(s) for s in batch.setl_id], branch)
    tally.not_members += len(batch) - row["of_members"]
    tally.accepted += row["kept"]
    tally.duplicates += row["of_members"] - row["kept"]


def split_block(block: Lines, today: date) -> tuple[Sound, list[Item]]:
    """A block of NDJSON lines: the records plainly sound, checked as columns (domain/feed_columns.py), and the
    others read one by one, in order (all of them if the columns cannot be read)."""
    try:
        frame, positions = block.frame()
        if not positions:
            return Sound(), block.items()
        mask, sound = sound_rows(frame, today)
    except (Exception, pl.exceptions.PanicException):  # polars could not read the block: line by line
        return Sound(), block.items()
    skip = [False] * len(block)
    for position, sound_here in zip(positions, mask, strict=True):
        skip[position] = sound_here
    sound.record = [block.raws[p] for p, sound_here in zip(positions, mask, strict=True) if sound_here]  # type: ignore[misc]
    return sound, block.items(skip)


async def ingest(session: AsyncSession, actor: Principal, items: AsyncIterator[list[Item] | Lines]) -> Tally:
    tally = Tally()
    today = date.today()
    conn = await driver_connection(session)
    batch = Sound()
    writing: asyncio.Task[None] | None = None

    async def flush() -> None:
        nonlocal batch, writing
        if writing is not None:
            await writing
            writing = None
        if batch:
            writing = asyncio.ensure_future(store(batch))
            batch = Sound()

    async def store(stored: Sound) -> None:
        await write_batch(conn, actor, stored, tally)
        # the one call into claims after a batch is stored: re-checks and auto claims (straight_through.py)
        await after_batch(session, actor, stored.setl_id, tally.claims)

    try:
        async for chunk in items:
            if isinstance(chunk, Lines):
                # in a thread: polars works without the GIL, so the batch before is written meanwhile
                sound, others = await asyncio.to_thread(split_block, chunk, today)
                checked_others = [] if not sound else [
                    (item, item[2] if isinstance(item[2], Refusal) else check_record(item[2], today))
                    for item in others]
                if not sound:
                    chunk = others  # nothing sound as columns: every record was read one by one, checked below
                elif any(not isinstance(checked, Refusal) for _, checked in checked_others):
                    chunk = chunk.items()  # a sound record read one by one: the block in file order, as below
                else:
                    tally.received += len(chunk)
                    batch.extend(sound)
                    for (line, index, _, _), refusal in checked_others:
                        tally.refuse(line, index, refusal)  # type: ignore[arg-type]
                    if len(batch) >= BATCH:
                        await flush()
                    continue
            for line, index, record, text in chunk:
                tally.received += 1
                if isinstance(record, Refusal):
                    tally.refuse(line, index, record)
                    continue
                checked = check_record(record, today)
                if isinstance(checked, Refusal):
                    tally.refuse(line, index, checked)
                    continue
                if checked.reversal:
                    await flush()
                    if writing is not None:
                        await writing
                        writing = None
                    outcome = await receive_reversal(session, checked, record, actor)
                    if outcome.outside:
                        tally.not_members += 1
                    elif outcome.duplicate:
                        tally.duplicates += 1
                    else:
                        tally.accepted += 1
                        tally.reversals += 1
                        tally.claims_reversed += outcome.claims_reversed
                    continue
                assert text is not None
                batch.append(checked, text)
                if len(batch) >= BATCH:
                    await flush()
        await flush()
        if writing is not None:
            await writing
            writing = None
    finally:
        if writing is not None:  # the feed failed half-way: let the write end before the transaction rolls back
            writing.cancel()
            try:
                await writing
            except BaseException:  # the feed's own error is the one that matters
                pass
    return tally


# --- unclaimed records (issue #12 item 4) -----------------------------------------------------------------
async def unclaimed(session: AsyncSession, actor: Principal, *, period: str | None, unit: str | None, limit: int,
                    cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
    """Covered members' settlements with no live claim, in the caller's branch, by setl_id: settled (at
    discharge) inside the member's cover, not reversed. For unions that call the member rather
    than wait for an application (Mianxian did this by hand)."""
    day = Settlement.setl_date  # settled at discharge
    live_claim = select(Claim.id).where(Claim.setl_id == Settlement.setl_id, Claim.status != "rejected").exists()
    query = (select(Settlement, Coverage)
             .join(Coverage, Coverage.certno == Settlement.certno)
             .where(Settlement.is_reversal.is_(False), Settlement.reversed_at.is_(None), ~live_claim,
                    or_(day.is_(None), day.between(Coverage.coverage_from, Coverage.coverage_to)))
             .ext(distinct_on(Settlement.setl_id))
             .order_by(Settlement.setl_id, Coverage.period.desc())
             .limit(limit + 1))
    if actor.role != "admin":
        query = query.where(array_in_branch(Coverage.unit_path, actor.branch))
    if period:
        query = query.where(Coverage.period == period)
    if unit:
        query = query.where(Coverage.unit == unit)
    if cursor:
        query = query.where(Settlement.setl_id > cursor)
    rows = (await session.execute(query)).all()
    items = [unclaimed_item(settlement, coverage) for settlement, coverage in rows[:limit]]
    return items, (rows[limit - 1][0].setl_id if len(rows) > limit else None)


def unclaimed_item(settlement: Settlement, coverage: Coverage) -> dict[str, Any]:
    record = settlement.record
    excluded = exclusion(record)
    return {"setl_id": settlement.setl_id, "member_id": coverage.member_id, "period": coverage.period,
            "unit": coverage.unit, "name": mask_name(coverage.name), "certno": mask_certno(coverage.certno),
            "insutype": settlement.insutype or record.get("insutype"),
            "med_type": settlement.med_type or record.get("med_type"),
            "setl_date": settlement.setl_date, "begndate": record.get("begndate"), "enddate": record.get("enddate"),
            "medfee_sumamt": settlement.medfee_sumamt, "psn_part_amt": settlement.psn_part_amt,
            "exclusion": str(excluded) if excluded else None}


def mask_name(name: str) -> str:
    """The family name and a star for each other character (王*, 欧阳**)."""
    return name[:1] + "*" * (len(name) - 1) if name else name


# --- daily totals (issue #12 item 5) ------------------------------------------------------------------------
async def record_totals(session: AsyncSession, actor: Principal, totals: list[DailyTotal]) -> None:
    for total in totals:
        stmt = insert(BureauTotal).values(
            sender_org=actor.org, setl_date=total.date, insutype=total.insutype, count=total.count,
            medfee_sumamt=total.medfee_sumamt, psn_part_amt=total.psn_part_amt)
        await session.execute(stmt.on_conflict_do_update(
            index_elements=[BureauTotal.sender_org, BureauTotal.setl_date, BureauTotal.insutype],
            set_={"count": stmt.excluded.count, "medfee_sumamt": stmt.excluded.medfee_sumamt,
                  "psn_part_amt": stmt.excluded.psn_part_amt, "received_at": func.now()}))
    await session.flush()


async def reconcile(session: AsyncSession, actor: Principal, days: list[date]) -> list[Reconciled]:
    """The bureau's totals for each (day, insutype) of ``days`` against every sound record it sent for them
    (members' and others', counted by feed_receipts): matched, or the differences. A mismatch is resolved by
    sending the detail file again: the records missing are added, those already here change nothing."""
    stated = (await session.execute(select(BureauTotal).where(
        BureauTotal.sender_org == actor.org, BureauTotal.setl_date.in_(days)))).scalars().all()
    received = {(d, i): (n, f, p) for d, i, n, f, p in (await session.execute(
        select(FeedReceipt.setl_date, FeedReceipt.insutype, func.count(),
               func.coalesce(func.sum(FeedReceipt.medfee_sumamt), 0),
               func.coalesce(func.sum(FeedReceipt.psn_part_amt), 0))
        .where(FeedReceipt.sender_org == actor.org, FeedReceipt.setl_date.in_(days))
        .group_by(FeedReceipt.setl_date, FeedReceipt.insutype))).all()}
    out = []
    for total in sorted(stated, key=lambda t: (t.setl_date, t.insutype)):
        count, medfee, person = received.get((total.setl_date, total.insutype), (0, Decimal("0"), Decimal("0")))
        out.append(Reconciled(date=total.setl_date, insutype=total.insutype, count=total.count,
                              medfee_sumamt=total.medfee_sumamt, psn_part_amt=total.psn_part_amt,
                              received_count=count, received_medfee_sumamt=Decimal(medfee),
                              received_psn_part_amt=Decimal(person)))
    return out


@dataclass
class DailyTotal:
    date: date
    insutype: str
    count: int
    medfee_sumamt: Decimal
    psn_part_amt: Decimal


@dataclass
class Reconciled:
    date: date
    insutype: str
    count: int
    medfee_sumamt: Decimal
    psn_part_amt: Decimal
    received_count: int
    received_medfee_sumamt: Decimal
    received_psn_part_amt: Decimal

    @property
    def differences(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        if self.count != self.received_count:
            found["count"] = self.count - self.received_count
        if self.medfee_sumamt != self.received_medfee_sumamt:
            found["medfee_sumamt"] = self.medfee_sumamt - self.received_medfee_sumamt
        if self.psn_part_amt != self.received_psn_part_amt:
            found["psn_part_amt"] = self.psn_part_amt - self.received_psn_part_amt
        return found
