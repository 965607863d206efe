"""Claims' own tables. Periods and coverages are claims' copy of enrollment's facts, built from its events,
so claims decides without calling enrollment (docs/ARCHITECTURE.md)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    Numeric,
    String,
    Text,
    func,
    text,
)
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
    revision: Mapped[int] = mapped_column(Integer, server_default="1", default=1)


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
    # The member's version in enrollment the identity fields come from: an older event never overwrites them.
    member_version: Mapped[int] = mapped_column(Integer, server_default="0", default=0)
    # seed 002 "多买几份": shares of each plan with a fee of its own; they multiply its aid (domain/shares.py).
    shares: Mapped[int] = mapped_column(Integer, server_default="1", default=1)


class HistoryCoverage(Base):
    """Who was covered in a period run before this system (enrollment's history import, by ID number only: the
    paper list names no member): counted in years of participation (second aid, seed 000)."""

    __tablename__ = "history_coverages"
    period: Mapped[str] = mapped_column(String(50), primary_key=True)
    certno: Mapped[str] = mapped_column(String(18), primary_key=True, index=True)


class LoyaltyCover(Base):
    """A plan granted to a member for a period by 第十五条 (enrollment's member.loyalty_granted): added to the
    member's coverage of the period, now or when that coverage arrives, and kept through later copies of it."""

    __tablename__ = "loyalty_covers"
    member_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    period: Mapped[str] = mapped_column(String(50), primary_key=True)
    plan: Mapped[str] = mapped_column(String(50), primary_key=True)
    periods_without_aid: Mapped[list[str]] = mapped_column(ARRAY(String(50)))
    # The grant's version in enrollment (member.loyalty_granted / member.loyalty_revoked): only a newer one
    # changes the row. ``withdrawn``: the plan is no longer on the coverage (a withdrawal before any claim on it).
    version: Mapped[int] = mapped_column(Integer, server_default="0", default=0)
    withdrawn: Mapped[bool] = mapped_column(Boolean, server_default=text("false"), default=False)


class Settlement(Base):
    """Settlement records as the bureau sent them (national field names), kept raw."""

    __tablename__ = "settlements"
    setl_id: Mapped[str] = mapped_column(String(60), primary_key=True)
    certno: Mapped[str | None] = mapped_column(String(18), index=True)
    record: Mapped[dict[str, Any]] = mapped_column(JSONB)
    # A reversal (refd_setl_flag set, or negative amounts) cancels the settlements of the same mdtrt_id
    # (docs/SETTLEMENT.md); a cancelled settlement carries reversed_at.
    mdtrt_id: Mapped[str | None] = mapped_column(String(60), index=True)
    is_reversal: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    reversed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), default=utcnow)
    # Read from the record as it is checked (services/claims/domain/feed.py), for the lists and totals that
    # would otherwise read every record's JSON (issue #12); null on records kept before.
    setl_date: Mapped[date | None] = mapped_column(Date)
    insutype: Mapped[str | None] = mapped_column(String(10))
    med_type: Mapped[str | None] = mapped_column(String(10))
    medfee_sumamt: Mapped[Decimal | None] = mapped_column(Numeric(16, 2))
    psn_part_amt: Mapped[Decimal | None] = mapped_column(Numeric(16, 2))


class FeedReceipt(Base):
    """Every sound settlement a bureau sent, member or not, as the figures its daily totals count (NHSA
    3201/3202 reconciliation): no person, no name, no certno, only a digest of the setl_id (to count a record
    sent twice once), the day, the scheme and two sums. Non-members' records themselves are never kept (PIPL)."""

    __tablename__ = "feed_receipts"
    sender_org: Mapped[str] = mapped_column(String(50), primary_key=True)
    digest: Mapped[bytes] = mapped_column(LargeBinary(16), primary_key=True)
    setl_date: Mapped[date] = mapped_column(Date)
    insutype: Mapped[str] = mapped_column(String(10))
    medfee_sumamt: Mapped[Decimal] = mapped_column(Numeric(16, 2))
    psn_part_amt: Mapped[Decimal] = mapped_column(Numeric(16, 2))


class BureauTotal(Base):
    """A bureau's daily totals for one (day, insutype) and the last comparison with what it sent."""

    __tablename__ = "bureau_totals"
    sender_org: Mapped[str] = mapped_column(String(50), primary_key=True)
    setl_date: Mapped[date] = mapped_column(Date, primary_key=True)
    insutype: Mapped[str] = mapped_column(String(10), primary_key=True)
    count: Mapped[int] = mapped_column(Integer)
    medfee_sumamt: Mapped[Decimal] = mapped_column(Numeric(18, 2))
    psn_part_amt: Mapped[Decimal] = mapped_column(Numeric(18, 2))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), default=utcnow)


class Claim(Base):
    __tablename__ = "claims"
    __table_args__ = (
        # The same settlement is claimed once: a second claim on it is refused (duplicate_settlement).
        # Second aid (二次补助) is claimed on the same settlement as the first aid: one live claim per plan.
        # A claim naming no settlement (second aid per period, a graded sum: issue #16) has setl_id ''.
        Index("uq_claims_live_setl_id_plan", "setl_id", "plan", unique=True,
              postgresql_where=text("status <> 'rejected' AND setl_id <> ''")),
        Index("ix_claims_member_period", "member_id", "period", "plan"),
        Index("ix_claims_due", "status", "due_date"),
        Index("ix_claims_queue", "status", "current_level", "level_entered_at"),
        Index("ix_claims_created", "created_at", "id"),
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
    # The claim against the bureau's record of its settlement: {status: verified|mismatch|unverified, differences}
    settlement_check: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    # application: someone applied; bureau: made from the bureau's record with no application (a plan's auto_claim)
    source: Mapped[str] = mapped_column(String(20), server_default="application", default="application")
    base: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    cumulative_base: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    # aid_amount is what the member is due now; assessed_aid what the first assessment gave. Every difference
    # between them is a row of claim_adjustments (history is never changed silently).
    aid_amount: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    assessed_aid: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    # Second aid inputs (remaining self-pay, years of participation) and where each came from.
    second_aid: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
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
    # The submitter's organisation and its path at submission: a unit agent reads the claims it submitted, even
    # one refused for want of coverage (whose member has no unit_path).
    submitter_org: Mapped[str | None] = mapped_column(String(50))
    submitter_path: Mapped[list[str]] = mapped_column(ARRAY(String(50)), default=list, server_default="{}")
    payment_instruction_id: Mapped[str | None] = mapped_column(String(40))
    payment_status: Mapped[str | None] = mapped_column(String(20))
    # The attempt the payment state belongs to: payment events move it only forward (services.claims.handlers).
    payment_attempt: Mapped[int | None] = mapped_column(Integer)
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
    # 第十二条: the reviewer's answers to the rulebook's exclusions checklist given with this decision
    exclusions: Mapped[dict[str, bool] | None] = mapped_column(JSONB)


class ClaimAdjustment(Base):
    """A re-assessment's difference for one claim: a top-up (> 0) or a recovery (< 0), with its cause."""

    __tablename__ = "claim_adjustments"
    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    claim_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("claims.id"), index=True)
    member_id: Mapped[str] = mapped_column(String(40))
    period: Mapped[str | None] = mapped_column(String(50))
    amount: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    aid_before: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    aid_after: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    cause: Mapped[str] = mapped_column(String(30))  # late_rejection | settlement_reversed | revoked_for_fraud
    cause_claim_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    reason: Mapped[str] = mapped_column(Text)
    explanation: Mapped[str | None] = mapped_column(Text)
    rulebook_code: Mapped[str | None] = mapped_column(String(50))
    # True when payments was told (ClaimAdjusted): the claim's aid had already been approved.
    announced: Mapped[bool] = mapped_column(Boolean, default=False)
    by_username: Mapped[str] = mapped_column(String(100))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), default=utcnow)


class ClaimRightRevocation(Base):
    """第十三条: fraud cancels the member's right to claim in the period (later claims: revoked_for_fraud)."""

    __tablename__ = "claim_right_revocations"
    member_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    period: Mapped[str] = mapped_column(String(50), primary_key=True)
    claim_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    reason: Mapped[str] = mapped_column(Text)
    by_username: Mapped[str] = mapped_column(String(100))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), default=utcnow)


class OverdueNotice(Base):
    """One ClaimOverdue per (claim, level, kind): the row is the timer's memory that it has fired."""

    __tablename__ = "overdue_notices"
    claim_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    level: Mapped[str] = mapped_column(String(20), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20), primary_key=True)  # reminder | escalation
    org: Mapped[str] = mapped_column(String(50))
    due_date: Mapped[date] = mapped_column(Date)
    sent_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), default=utcnow)


class CalendarYear(Base):
    """A year whose State Council holiday arrangement the calendar holds (seeded or entered by an admin)."""

    __tablename__ = "calendar_years"
    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    source: Mapped[str] = mapped_column(String(100))  # chinesecalendar <version> | admin
    updated_by: Mapped[str] = mapped_column(String(100))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), default=utcnow)


class CalendarDay(Base):
    """An exception to Monday-Friday: a holiday (working = false) or a make-up working day (调休, true)."""

    __tablename__ = "calendar_days"
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    year: Mapped[int] = mapped_column(Integer, index=True)
    working: Mapped[bool] = mapped_column(Boolean)
    name: Mapped[str] = mapped_column(String(100))


class ClaimDocument(Base):
    """A document of a claim; the bytes live outside the database (CLAIMS_DOCUMENTS_DIR), named by id."""

    __tablename__ = "claim_documents"
    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    claim_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("claims.id"), index=True)
    doc_type: Mapped[str] = mapped_column(String(40))
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(50))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str] = mapped_column(String(200))
    uploaded_by: Mapped[str] = mapped_column(String(100))
    uploaded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), default=utcnow)


class AwaitedReference(Base):
    """When a command first asked for a member claims did not know (the start of its grace period)."""

    __tablename__ = "awaited_references"
    reference: Mapped[str] = mapped_column(String(120), primary_key=True)
    first_asked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
