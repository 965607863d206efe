"""Claims' own tables. Periods and coverages are claims' copy of enrollment's facts, built from its events,
so claims decides without calling enrollment (ARCHITECTURE.md)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Date, DateTime, ForeignKey, Index, Numeric, String, Text, func, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.db import new_metadata, utcnow
from shared.idempotency import idempotency_table
from shared.messaging import messaging_tables


class Base(DeclarativeBase):
    metadata = new_metadata()


MESSAGING = messaging_tables(Base.metadata)
IDEMPOTENCY = idempotency_table(Base.metadata)


class PeriodCopy(Base):
    __tablename__ = "periods"
    code: Mapped[str] = mapped_column(String(50), primary_key=True)
    rulebook: Mapped[dict[str, Any]] = mapped_column(JSONB)


class Coverage(Base):
    __tablename__ = "coverages"
    member_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    period: Mapped[str] = mapped_column(String(50), primary_key=True)
    plans: Mapped[list[str]] = mapped_column(ARRAY(String(50)))
    coverage_from: Mapped[date] = mapped_column(Date)
    coverage_to: Mapped[date] = mapped_column(Date)
    ended_on: Mapped[date | None] = mapped_column(Date)
    certno: Mapped[str] = mapped_column(String(18), index=True)
    name: Mapped[str] = mapped_column(String(100))
    sex: Mapped[str] = mapped_column(String(10))
    unit: Mapped[str] = mapped_column(String(50))
    unit_path: Mapped[list[str]] = mapped_column(ARRAY(String(50)))


class Settlement(Base):
    """Settlement records as the bureau sent them (national field names), kept raw."""

    __tablename__ = "settlements"
    setl_id: Mapped[str] = mapped_column(String(60), primary_key=True)
    certno: Mapped[str | None] = mapped_column(String(18), index=True)
    record: Mapped[dict[str, Any]] = mapped_column(JSONB)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), default=utcnow)


class Claim(Base):
    __tablename__ = "claims"
    __table_args__ = (
        # The same settlement is claimed once: a second claim on it is refused (duplicate_settlement).
        Index("uq_claims_live_setl_id", "setl_id", unique=True, postgresql_where=text("status <> 'rejected'")),
        Index("ix_claims_queue", "status", "current_level", "level_entered_at"),
    )
    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    member_id: Mapped[str] = mapped_column(String(40), index=True)
    period: Mapped[str | None] = mapped_column(String(50))
    plan: Mapped[str] = mapped_column(String(50))
    status: Mapped[str] = mapped_column(String(20))
    setl_id: Mapped[str] = mapped_column(String(60))
    med_type: Mapped[str] = mapped_column(String(10))
    admission_date: Mapped[date] = mapped_column(Date)
    discharge_date: Mapped[date] = mapped_column(Date)
    diagnosis: Mapped[dict[str, Any]] = mapped_column(JSONB)
    settlement: Mapped[dict[str, Any]] = mapped_column(JSONB)
    base: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    cumulative_base: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    aid_amount: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    explanation: Mapped[str | None] = mapped_column(Text)
    rulebook_code: Mapped[str | None] = mapped_column(String(50))
    rejection_code: Mapped[str | None] = mapped_column(String(50))
    rejection_detail: Mapped[str | None] = mapped_column(Text)
    unit: Mapped[str | None] = mapped_column(String(50))
    unit_path: Mapped[list[str]] = mapped_column(ARRAY(String(50)), default=list)
    review_path: Mapped[list[str]] = mapped_column(ARRAY(String(20)), default=list)
    current_level: Mapped[str | None] = mapped_column(String(20))
    final_level: Mapped[str | None] = mapped_column(String(20))
    returned_level: Mapped[str | None] = mapped_column(String(20))
    level_entered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    due_date: Mapped[date | None] = mapped_column(Date)
    due_warning: Mapped[str | None] = mapped_column(Text)
    submitted_by: Mapped[str] = mapped_column(String(100))
    payment_instruction_id: Mapped[str | None] = mapped_column(String(40))
    payment_status: Mapped[str | None] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), default=utcnow,
                                                 onupdate=func.now())


class ClaimStep(Base):
    """The audit of a claim: who decided what, when, why, and which rulebook computed the amount."""

    __tablename__ = "claim_steps"
    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    claim_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("claims.id"), index=True)
    level: Mapped[str | None] = mapped_column(String(20))
    decision: Mapped[str] = mapped_column(String(20))
    by_user: Mapped[str] = mapped_column(String(40))
    by_username: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str | None] = mapped_column(Text)
    rulebook_code: Mapped[str | None] = mapped_column(String(50))
    aid_amount: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), default=utcnow)
