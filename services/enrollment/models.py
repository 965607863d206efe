"""Enrollment's own tables: organisations, staff accounts, periods, members, rosters, enrolments, fees."""

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
    Numeric,
    String,
    Text,
    func,
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


class Org(Base):
    __tablename__ = "orgs"
    code: Mapped[str] = mapped_column(String(50), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    level: Mapped[str] = mapped_column(String(20))
    parent: Mapped[str | None] = mapped_column(ForeignKey("orgs.code"))
    path: Mapped[list[str]] = mapped_column(ARRAY(String(50)))  # codes from the centre down to this org
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), default=utcnow)


class User(Base):
    __tablename__ = "users"
    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    password_hash: Mapped[str] = mapped_column(Text)
    role: Mapped[str] = mapped_column(String(30))
    org: Mapped[str | None] = mapped_column(ForeignKey("orgs.code"))
    member_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), ForeignKey("members.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), default=utcnow)


class Period(Base):
    __tablename__ = "periods"
    code: Mapped[str] = mapped_column(String(50), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    previous_period: Mapped[str | None] = mapped_column(String(50))
    rulebook: Mapped[dict[str, Any]] = mapped_column(JSONB)
    revision: Mapped[int] = mapped_column(Integer, server_default="1", default=1)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), default=utcnow)


class Member(Base):
    __tablename__ = "members"
    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    certno: Mapped[str] = mapped_column(String(18), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    sex: Mapped[str] = mapped_column(String(10))
    phone: Mapped[str] = mapped_column(String(20))
    member_type: Mapped[str] = mapped_column(String(20))
    bank_account: Mapped[str] = mapped_column(String(40))
    bank_name: Mapped[str] = mapped_column(String(100))
    # No foreign key on the two columns a 200,000-row roster writes per row (here and enrolments.roster_id):
    # each costs a trigger per row (measured: 1.1 s of a 4.2 s load). The code that writes them has just
    # checked the unit and inserted the roster in the same transaction.
    unit: Mapped[str] = mapped_column(String(50))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), default=utcnow)
    # Raised by every change of contact or identity details; events about the member carry it, so the
    # other services keep the newest details whatever order the events arrive in (issue #11).
    version: Mapped[int] = mapped_column(Integer, server_default="1", default=1)


class Roster(Base):
    __tablename__ = "rosters"
    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    period: Mapped[str] = mapped_column(ForeignKey("periods.code"))
    unit: Mapped[str] = mapped_column(ForeignKey("orgs.code"))
    status: Mapped[str] = mapped_column(String(30))  # awaiting_payment | active
    staff: Mapped[dict[str, Any]] = mapped_column(JSONB)
    member_count: Mapped[int]
    fee_total: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    paid_total: Mapped[Decimal] = mapped_column(Numeric(14, 2), default=Decimal("0.00"))
    # Seed 004: who pays which part of the fees, when the rulebook splits them ({payer: amount}).
    fee_split: Mapped[dict[str, str] | None] = mapped_column(JSONB)
    # Seed 002 "5种方式": the unit's own choice of payers for this roster ({payer: fraction}), when it gave one.
    payers: Mapped[dict[str, str] | None] = mapped_column(JSONB)
    submitted_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), default=utcnow)


class Enrolment(Base):
    """One share per person per period (第四条): the key is (period, member). ``period`` and ``unit`` repeat
    the roster's (which holds the foreign keys), so a 200,000-row roster checks two keys per row, not four."""

    __tablename__ = "enrolments"
    period: Mapped[str] = mapped_column(String(50), primary_key=True)
    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id"), primary_key=True)
    roster_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), index=True)
    unit: Mapped[str] = mapped_column(String(50))
    plans: Mapped[list[str]] = mapped_column(ARRAY(String(50)))
    insurance: Mapped[list[str]] = mapped_column(ARRAY(String(50)))
    renewing: Mapped[bool] = mapped_column(Boolean)
    fee: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    # seed 002 "多买几份": shares of each plan with a fee (the fee above is already multiplied by them).
    shares: Mapped[int] = mapped_column(Integer, server_default="1", default=1)
    status: Mapped[str] = mapped_column(String(20))  # pending | covered | withdrawn
    covered_from: Mapped[date | None] = mapped_column(Date)
    covered_to: Mapped[date | None] = mapped_column(Date)
    withdrawn_on: Mapped[date | None] = mapped_column(Date)  # aid rights end from this day
    withdrawal_reason: Mapped[str | None] = mapped_column(Text)


class RosterPayment(Base):
    __tablename__ = "roster_payments"
    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    roster_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("rosters.id"))
    amount: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    reference: Mapped[str] = mapped_column(String(100))
    paid_at: Mapped[date] = mapped_column(Date)
    recorded_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), default=utcnow)


class AuditEntry(Base):
    __tablename__ = "audit_log"
    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(50))
    subject: Mapped[str] = mapped_column(String(100))
    detail: Mapped[dict[str, Any]] = mapped_column(JSONB)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), default=utcnow)


class MemberAid(Base):
    """A member's aid in a period: the sum of their claims' current aid (``claim_aid``), for loyalty (第十五条)."""

    __tablename__ = "member_aid"
    member_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    period: Mapped[str] = mapped_column(String(50), primary_key=True)
    aid_total: Mapped[Decimal] = mapped_column(Numeric(14, 2))


class ClaimAidRow(Base):
    """One claim's current aid (第十五条 counts periods without aid), from the claims service's events:
    ``claim.approved``, ``claim.adjusted``, ``claim.rejected`` (a reversal), ``claim.revoked``
    (domain/loyalty_rules.claim_aid_after). ``member_aid`` holds their sum per member and period."""

    __tablename__ = "claim_aid"
    # A claim id; rows carried over from member_aid before per-claim aid was kept are 'before-l16:...'.
    claim_id: Mapped[str] = mapped_column(String(120), primary_key=True)
    member_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    period: Mapped[str] = mapped_column(String(50))
    aid: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    ended: Mapped[bool] = mapped_column(Boolean, server_default="false", default=False)
    adjusted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    __table_args__ = (Index("ix_claim_aid_member_id_period", "member_id", "period"),)


class LoyaltyGrant(Base):
    """第十五条: consecutive periods without aid earn the cover the rulebook names. A grant whose chain is
    found to hold aid later is withdrawn (``withdrawn_at``), and may be granted again if that aid goes;
    ``version`` counts those changes, so consumers apply them in order."""

    __tablename__ = "loyalty_grants"
    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id"), primary_key=True)
    period: Mapped[str] = mapped_column(ForeignKey("periods.code"), primary_key=True)
    grant: Mapped[str] = mapped_column(String(100))
    periods_without_aid: Mapped[list[str]] = mapped_column(ARRAY(String(50)))
    granted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), default=utcnow)
    version: Mapped[int] = mapped_column(Integer, server_default="1", default=1)
    withdrawn_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Remittance(Base):
    """An office's transfer of pooled fees to the centre; what it remits must equal the system's data."""

    __tablename__ = "remittances"
    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    period: Mapped[str] = mapped_column(ForeignKey("periods.code"))
    office: Mapped[str] = mapped_column(ForeignKey("orgs.code"))
    amount: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    reference: Mapped[str] = mapped_column(String(100))
    remitted_at: Mapped[date] = mapped_column(Date)
    recorded_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), default=utcnow)


class PeriodHistory(Base):
    """A person covered in a period that ran before this system (on paper), as the centre imported it.

    Keyed by ID number, not member: the paper list gives identity only (no name, phone or bank account), and
    many on it never join again, so they are not made members (a member row carries what paying aid needs).
    Rosters and loyalty find people by ID number, so a person enrolled later by a roster is recognised as
    renewing without any link being made. ``period`` and ``unit`` carry no foreign key, as ``enrolments``:
    the import checked both in the same transaction, and a 100,000-row load would pay two triggers a row."""

    __tablename__ = "period_history"
    period: Mapped[str] = mapped_column(String(50), primary_key=True)
    certno: Mapped[str] = mapped_column(String(18), primary_key=True)
    unit: Mapped[str] = mapped_column(String(50))
    member_type: Mapped[str] = mapped_column(String(20))
    aid_received: Mapped[bool] = mapped_column(Boolean)
    recorded_by: Mapped[str] = mapped_column(String(100))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), default=utcnow)


class MemberRelease(Base):
    """A member's current unit (or the admin / the centre) lets them go: the next roster of ``to_unit`` (any
    unit when it is empty) that names them moves them there, once. Until then no other unit's roster can."""

    __tablename__ = "member_releases"
    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id"), index=True)
    from_unit: Mapped[str] = mapped_column(String(50))
    to_unit: Mapped[str | None] = mapped_column(String(50))
    reason: Mapped[str] = mapped_column(Text)
    released_by: Mapped[str] = mapped_column(String(100))
    released_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), default=utcnow)
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    used_by_roster: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))


class LoginFailure(Base):
    """A wrong password (or an unknown username) at login: ten in the window lock the username for a while."""

    __tablename__ = "login_failures"
    __table_args__ = (Index("ix_login_failures_username", "username", "at"),)
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(100))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), default=utcnow)
