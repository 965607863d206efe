"""Payments' own tables: payees (its copy of members' bank details, from enrollment's events) and payment
instructions, whose identity is ``(claim_id, attempt)`` so a redelivered approval can never pay twice."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from sqlalchemy import DateTime, Index, Integer, Numeric, String, UniqueConstraint, func, text
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.db import new_metadata, utcnow
from shared.idempotency import idempotency_table
from shared.messaging import messaging_tables


class Base(DeclarativeBase):
    metadata = new_metadata()


MESSAGING = messaging_tables(Base.metadata)
IDEMPOTENCY = idempotency_table(Base.metadata)
LIVE_STATUSES = ("pending", "batched", "paid")


class Payee(Base):
    __tablename__ = "payees"
    member_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    bank_account: Mapped[str] = mapped_column(String(40))
    bank_name: Mapped[str] = mapped_column(String(100))
    unit_path: Mapped[str] = mapped_column(String(300))  # "/centre/office/agency/unit" for branch checks


class Instruction(Base):
    __tablename__ = "payment_instructions"
    __table_args__ = (
        UniqueConstraint("claim_id", "attempt"),
        # Never two live instructions for one claim, whatever races (ARCHITECTURE.md invariants).
        Index("uq_payment_instructions_live_claim", "claim_id", unique=True,
              postgresql_where=text("status IN ('pending', 'batched', 'paid')")),
    )
    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    claim_id: Mapped[str] = mapped_column(String(40))
    attempt: Mapped[int] = mapped_column(Integer)
    member_id: Mapped[str] = mapped_column(String(40), index=True)
    period: Mapped[str] = mapped_column(String(50))
    amount: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    payee_name: Mapped[str | None] = mapped_column(String(100))
    account: Mapped[str | None] = mapped_column(String(40))
    bank_name: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(20))  # pending | batched | paid | failed | cancelled
    failure_reason: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), default=utcnow)
