"""The bureau feed stored (issue #12 item 1): records checked one by one (domain/feed.py), written in batches.

Each batch of sound settlements costs three statements whatever its size: which certnos are members in the
caller's branch (claims' Coverage copy of enrollment), one ``INSERT ... SELECT FROM unnest(...) ON CONFLICT DO
NOTHING`` of the members' records (a setl_id already kept is a duplicate: the same file sent again changes
nothing), and one of the receipts (feed_receipts: a digest of the setl_id with the day, scheme and two sums, for
the daily totals; no person). A batch is written while the next is read and checked. Reversals are rare and
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
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.claims.domain.feed import Checked, Refusal, check_record
from services.claims.settlements.reading import Item
from services.claims.settlements.reversals import receive_reversal
from shared.auth import Principal

BATCH = 10000
MAX_REJECTED = 1000  # the first refusals are listed, all are counted

MEMBERS_SQL = """
SELECT DISTINCT certno FROM coverages
WHERE certno = ANY($1::varchar[]) AND ($2::varchar[] IS NULL OR unit_path[1:cardinality($2::varchar[])] = $2::varchar[])
"""
INSERT_SQL = """
WITH kept AS (
  INSERT INTO settlements (setl_id, certno, record, mdtrt_id, is_reversal, setl_date, insutype, med_type,
                          medfee_sumamt, psn_part_amt)
  SELECT s, c, r::jsonb, m, false, d, i, t, f::numeric, p::numeric
  FROM unnest($1::varchar[], $2::varchar[], $3::text[], $4::varchar[], $5::date[], $6::varchar[], $7::varchar[],
              $8::text[], $9::text[]) AS x(s, c, r, m, d, i, t, f, p)
  WHERE NOT EXISTS (SELECT 1 FROM settlements k WHERE k.setl_id = x.s)  -- a resend: its JSON is not even parsed
  ON CONFLICT (setl_id) DO NOTHING
  RETURNING 1)
SELECT count(*) FROM kept
"""
RECEIPTS_SQL = """
INSERT INTO feed_receipts (sender_org, digest, setl_date, insutype, medfee_sumamt, psn_part_amt)
SELECT $1, g, d, i, f::numeric, p::numeric FROM unnest($2::bytea[], $3::date[], $4::varchar[], $5::text[], $6::text[])
  AS x(g, d, i, f, p)
ON CONFLICT DO NOTHING
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


async def driver_connection(session: AsyncSession) -> Any:
    """The asyncpg connection under the session, in the session's transaction."""
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    return raw.driver_connection


async def write_batch(conn: Any, actor: Principal, batch: list[tuple[Checked, str]], tally: Tally) -> None:
    certnos = list({checked.certno for checked, _ in batch if checked.certno})
    branch = None if actor.role == "admin" else list(actor.branch)
    members = {row[0] for row in await conn.fetch(MEMBERS_SQL, certnos, branch)}
    kept = [(i, c, text) for i, (c, text) in enumerate(batch) if c.certno in members]
    tally.not_members += len(batch) - len(kept)
    medfee = [str(c.medfee_sumamt) for c, _ in batch]
    person = [str(c.psn_part_amt) for c, _ in batch]
    await conn.execute(RECEIPTS_SQL, actor.org, [digest(c.setl_id) for c, _ in batch],
                       [c.setl_date for c, _ in batch], [c.insutype for c, _ in batch], medfee, person)
    if not kept:
        return
    inserted = await conn.fetchval(INSERT_SQL, [c.setl_id for _, c, _ in kept], [c.certno for _, c, _ in kept],
                                   [text for _, _, text in kept], [c.mdtrt_id for _, c, _ in kept],
                                   [c.setl_date for _, c, _ in kept], [c.insutype for _, c, _ in kept],
                                   [c.med_type for _, c, _ in kept], [medfee[i] for i, _, _ in kept],
                                   [person[i] for i, _, _ in kept])
    tally.accepted += inserted
    tally.duplicates += len(kept) - inserted


async def ingest(session: AsyncSession, actor: Principal, items: AsyncIterator[list[Item]]) -> Tally:
    tally = Tally()
    today = date.today()
    conn = await driver_connection(session)
    batch: list[tuple[Checked, str]] = []
    writing: asyncio.Task[None] | None = None

    async def flush() -> None:
        nonlocal batch, writing
        if writing is not None:
            await writing
            writing = None
        if batch:
            writing = asyncio.ensure_future(write_batch(conn, actor, batch, tally))
            batch = []

    try:
        async for chunk in items:
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
                batch.append((checked, text))
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
