"""Payments' own tables: payees (its copy of members' bank details, from enrollment's events), payment
instructions, whose identity is ``(claim_id, adjustment_id, attempt)`` so a redelivered approval can never pay
twice, batches and their files, recoveries, the fund's double-entry ledger, and the fee data the ledger is
reconciled against."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    Numeric,
    String,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.db import new_metadata, utcnow
from shared.idempotency import idempotency_table
from shared.messaging import messaging_tables
from shared.vocab import InstructionStatus


class Base(DeclarativeBase):
    metadata = new_metadata()


MESSAGING = messaging_tables(Base.metadata)
IDEMPOTENCY = idempotency_table(Base.metadata)


LIVE_STATUSES = (InstructionStatus.PENDING, InstructionStatus.HELD, InstructionStatus.BATCHED,
                 InstructionStatus.PAID)
LIVE_SQL = "status IN ('pending', 'held', 'batched', 'paid')"


class Payee(Base):
    __tablename__ = "payees"
    member_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    bank_account: Mapped[str] = mapped_column(String(40))
    bank_name: Mapped[str] = mapped_column(String(100))
    unit_path: Mapped[str] = mapped_column(String(300))  # "/centre/office/agency/unit" for branch checks
    # When the bank account last changed (member.contact_changed) and by whom (a user id): instructions to an
    # account this new are held until a finance officer, not that person, confirms them.
    account_changed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    account_changed_by: Mapped[str | None] = mapped_column(String(60))
    # The member's version in enrollment these fields come from: an older event never overwrites them.
    member_version: Mapped[int] = mapped_column(Integer, server_default="0", default=0)


class Instruction(Base):
    """One transfer of one claim's aid (``adjustment_id`` '') or of one top-up (``adjustment_id`` = the
    claims service's adjustment id) to one account; a failed transfer is retried as attempt n+1."""

    __tablename__ = "payment_instructions"
    __table_args__ = (
        UniqueConstraint("claim_id", "adjustment_id", "attempt", name="uq_payment_instructions_identity"),
        # Never two live instructions for one claim's aid (or one top-up), whatever races (docs/ARCHITECTURE.md).
        Index("uq_payment_instructions_live_claim", "claim_id", "adjustment_id", unique=True,
              postgresql_where=text(LIVE_SQL)),
        Index("ix_payment_instructions_pending", "created_at", postgresql_where=text("status = 'pending'")),
    )
    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    claim_id: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(20), server_default="aid", default="aid")  # aid | top_up
    adjustment_id: Mapped[str] = mapped_column(String(40), server_default="", default="")
    attempt: Mapped[int] = mapped_column(Integer)
    member_id: Mapped[str] = mapped_column(String(40), index=True)
    period: Mapped[str] = mapped_column(String(50))
    amount: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    payee_name: Mapped[str | None] = mapped_column(String(100))
    account: Mapped[str | None] = mapped_column(String(40))
    bank_name: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(20))  # InstructionStatus
    failure_reason: Mapped[str | None] = mapped_column(String(200))
    # Why it is (or was) held, and the finance officer who confirmed the new account, when and why.
    hold_reason: Mapped[str | None] = mapped_column(String(200))
    hold_confirmed_by: Mapped[str | None] = mapped_column(String(60))
    hold_confirmed_by_name: Mapped[str | None] = mapped_column(String(100))
    hold_confirmed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    hold_confirm_note: Mapped[str | None] = mapped_column(String(500))
    batch_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), index=True)
    settled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), default=utcnow)


class Batch(Base):
    """A cut of pending instructions: immutable once cut (count, control sum and file fixed)."""

    __tablename__ = "payment_batches"
    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    format: Mapped[str] = mapped_column(String(20))  # pain001 | bank_csv
    status: Mapped[str] = mapped_column(String(20))  # awaiting_release | released | settled | voided
    count: Mapped[int] = mapped_column(Integer)
    total: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    execution_date: Mapped[date] = mapped_column(Date)
    cut_by: Mapped[str] = mapped_column(String(60))  # user id: the releaser must be someone else
    cut_by_name: Mapped[str] = mapped_column(String(100))
    cut_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), default=utcnow)
    released_by: Mapped[str | None] = mapped_column(String(60))
    released_by_name: Mapped[str | None] = mapped_column(String(100))
    released_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    voided_reason: Mapped[str | None] = mapped_column(String(200))


class BatchFile(Base):
    """The validated file of a batch, stored as built: what is served is exactly what was checked."""

    __tablename__ = "payment_batch_files"
    batch_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), ForeignKey("payment_batches.id"),
                                                primary_key=True)
    filename: Mapped[str] = mapped_column(String(100))
    media_type: Mapped[str] = mapped_column(String(60))
    sha256: Mapped[str] = mapped_column(String(64))
    content: Mapped[bytes] = mapped_column(LargeBinary)


class RevokedClaim(Base):
    """A revoked claim (fraud): never paid again, never retried; a late 'paid' result becomes a recovery."""

    __tablename__ = "revoked_claims"
    claim_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    member_id: Mapped[str] = mapped_column(String(40))
    period: Mapped[str] = mapped_column(String(50))
    reason: Mapped[str] = mapped_column(String(500))
    revoked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), default=utcnow)


class Recovery(Base):
    """Aid to be asked back from a member (revocation, or a downward adjustment), and what came back."""

    __tablename__ = "recoveries"
    __table_args__ = (CheckConstraint("amount_recovered <= amount_due", name="not_over"),)
    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    source: Mapped[str] = mapped_column(String(200), unique=True)  # what caused it: one recovery per cause
    claim_id: Mapped[str] = mapped_column(String(40), index=True)
    member_id: Mapped[str] = mapped_column(String(40))
    period: Mapped[str] = mapped_column(String(50))
    amount_due: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    amount_recovered: Mapped[Decimal] = mapped_column(Numeric(14, 2), server_default="0", default=Decimal("0.00"))
    reason: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), default=utcnow)


class LedgerEntry(Base):
    """One journal entry; its postings sum to zero (a deferred constraint trigger checks it at commit)."""

    __tablename__ = "ledger_entries"
    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    period: Mapped[str] = mapped_column(String(50), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    source: Mapped[str] = mapped_column(String(200), unique=True)  # the business fact it records, once
    memo: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), default=utcnow)


class LedgerPosting(Base):
    __tablename__ = "ledger_postings"
    __table_args__ = (Index("ix_ledger_postings_period_account", "period", "account"),)
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    entry_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), ForeignKey("ledger_entries.id"), index=True)
    period: Mapped[str] = mapped_column(String(50))
    account: Mapped[str] = mapped_column(String(40))
    amount: Mapped[Decimal] = mapped_column(Numeric(14, 2))  # debit > 0, credit < 0


class UnitFees(Base):
    """What the system's roster data says a unit owes for a period: the fees of its covered members."""

    __tablename__ = "unit_roster_fees"
    member_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    period: Mapped[str] = mapped_column(String(50), primary_key=True)
    unit: Mapped[str] = mapped_column(String(40), index=True)
    office: Mapped[str] = mapped_column(String(40))
    fee: Mapped[Decimal] = mapped_column(Numeric(14, 2))


class FeesReceipt(Base):
    """A unit's fee payment as enrollment announced it (roster.fees_received), one row per event."""

    __tablename__ = "fees_receipts"
    event_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    roster_id: Mapped[str] = mapped_column(String(40))
    period: Mapped[str] = mapped_column(String(50), index=True)
    unit: Mapped[str] = mapped_column(String(40))
    office: Mapped[str | None] = mapped_column(String(40))
    amount: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    reference: Mapped[str] = mapped_column(String(100))


class OfficeRemittance(Base):
    """What an office transferred to the centre (fees.remitted): compared with what its units paid, because the
    amount remitted must equal the enrolment data in the system (docs/DOMAIN.md, 第五条)."""

    __tablename__ = "office_remittances"
    remittance_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    period: Mapped[str] = mapped_column(String(50), index=True)
    office: Mapped[str] = mapped_column(String(40))
    amount: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    reference: Mapped[str] = mapped_column(String(100))
    remitted_at: Mapped[date] = mapped_column(Date)
