"""Storing the ledger: a journal entry per business fact, once (its ``source`` is unique), in the caller's
transaction, so a state change and its postings commit together (issue 5 §4)."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.payments import ledger
from services.payments.models import LedgerEntry, LedgerPosting


async def post(session: AsyncSession, period: str, entry: ledger.JournalEntry, source: str, memo: str) -> bool:
    """Record ``entry`` for ``period`` unless the fact ``source`` was recorded before; True when recorded."""
    entry_id = uuid.uuid4()
    inserted = (await session.execute(
        insert(LedgerEntry).values(id=entry_id, period=period, kind=entry.kind, source=source, memo=memo[:300])
        .on_conflict_do_nothing(index_elements=["source"]).returning(LedgerEntry.id))).first()
    if inserted is None:
        return False
    await session.execute(insert(LedgerPosting), [
        {"entry_id": entry_id, "period": period, "account": p.account, "amount": p.amount} for p in entry.postings])
    return True


async def period_statement(session: AsyncSession, period: str) -> tuple[ledger.Statement, int]:
    # Summed in the database per (kind, account): the pure statement gives the same figures from sums.
    rows = (await session.execute(
        select(LedgerEntry.kind, LedgerPosting.account, func.sum(LedgerPosting.amount))
        .join(LedgerEntry, LedgerEntry.id == LedgerPosting.entry_id)
        .where(LedgerPosting.period == period).group_by(LedgerEntry.kind, LedgerPosting.account))).all()
    entries = (await session.execute(
        select(func.count()).select_from(LedgerEntry).where(LedgerEntry.period == period))).scalar_one()
    return ledger.statement((kind, account, amount) for kind, account, amount in rows), int(entries)
