"""Enrollment's request and response models (docs/API.md "Enrollment (8001)"): what the endpoints of api.py take
and give back, so the OpenAPI document describes both. Money goes out as ``MoneyOut`` ("1260.00"), levels,
roles and statuses as the enums of shared/vocab.py; personal data is masked before it reaches these models."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.fields import PositiveMoney, SaneDate
from shared.schemas import MoneyOut
from shared.vocab import EnrolmentStatus, OrgLevel, Role, RosterStatus


# --- organisations and staff -------------------------------------------------------------------------------
class OrgIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str = Field(min_length=1, max_length=50, pattern=r"^[A-Za-z0-9_.-]+$")
    name: str = Field(min_length=1, max_length=200)
    level: OrgLevel
    parent: str | None = None


class OrgOut(BaseModel):
    code: str
    name: str
    level: OrgLevel
    parent: str | None
    path: list[str]  # the codes from the centre down to this organisation


class UserIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(min_length=3, max_length=100)
    password: str = Field(min_length=8, max_length=200)
    role: Role
    org: str | None = None
    member_id: uuid.UUID | None = None


class UserOut(BaseModel):
    user_id: str
    username: str
    role: Role
    org: str | None


# --- periods ----------------------------------------------------------------------------------------------
class PeriodOut(BaseModel):
    code: str
    name: str
    previous_period: str | None
    windows: dict[str, Any]  # enrolment / coverage / claims windows, each {from, to} (the rulebook's own shape)
    rulebook: dict[str, Any]  # the whole rulebook as stored (shared/rulebook.py describes its keys)
    revision: int | None = None  # set by a correction (PUT .../rulebook)


class RosterCounts(BaseModel):
    count: int
    fee_total: MoneyOut
    paid_total: MoneyOut


class PeriodSummaryOut(BaseModel):
    period: str
    rosters: dict[RosterStatus, RosterCounts]


# --- rosters ----------------------------------------------------------------------------------------------
class StaffIn(BaseModel):
    total: int = Field(ge=0)
    in_service: int = Field(ge=0)
    basic_insured_in_service: int = Field(ge=0)
    # The day the unit counted its staff on: required where the rulebook says `headcount_as_of` (seed 001 运城
    # "人数以当年5月31日人数为准"): the latest such day on or before the roster's submission.
    as_of: SaneDate | None = None


class MemberIn(BaseModel):
    name: str = Field(max_length=100)
    certno: str = Field(max_length=18)
    phone: str = Field(max_length=20)
    sex: Literal["male", "female"]
    member_type: Literal["in_service", "retired"]
    bank_account: str = Field(max_length=40)
    bank_name: str = Field(max_length=100)
    insurance: list[str] = []
    plans: list[str] | None = None
    # seed 002 "多买几份": shares of each plan with a fee, at most the rulebook's `enrolment.shares_per_member`.
    shares: int = Field(default=1, ge=1, le=1_000_000)


PayerCode = Annotated[str, Field(min_length=1, max_length=50)]


class RosterIn(BaseModel):
    staff: StaffIn
    members: list[MemberIn]
    # seed 002 "费用交纳有5种方式": the unit's choice of who pays its members' fees, each payer's fraction of
    # every fee (from the rulebook's `enrolment.payers_allowed`), adding up to 1, e.g. {"employer": "0.5",
    # "member": "0.5"}. Absent: the rulebook's own split, if any.
    payers: dict[PayerCode, Decimal] | None = Field(default=None, max_length=20)


class RosterWarning(BaseModel):
    """A finding that does not refuse the roster (e.g. a member already enrolled elsewhere), named by row."""

    model_config = ConfigDict(extra="allow")
    loc: list[str | int]
    msg: str
    code: str


class RosterOut(BaseModel):
    roster_id: str
    period: str
    unit: str
    status: RosterStatus
    members: int
    fee_total: MoneyOut
    paid_total: MoneyOut
    # payer -> amount, when the roster's `payers` (seed 002) or else the rulebook's `fee.payers` split the fees
    fee_split: dict[str, str] | None


class RosterSubmitted(RosterOut):
    """The answer to a roster's submission: the roster and the findings that did not refuse it."""

    warnings: list[RosterWarning]


class PaymentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    amount: PositiveMoney
    reference: str = Field(min_length=1, max_length=100)
    paid_at: SaneDate


# --- members ----------------------------------------------------------------------------------------------
class CoverageOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    period: str
    plan: str
    status: EnrolmentStatus
    roster_id: str
    unit: str
    from_: date | None = Field(alias="from")
    to: date | None


class MemberOut(BaseModel):
    """A member as staff and the member see them: ID number, phone and account masked (whole only through
    ``POST /members/{id}/reveal``, on purpose and audited)."""

    member_id: str
    name: str
    certno: str
    phone: str
    bank_account: str
    bank_name: str
    sex: Literal["male", "female"]
    member_type: Literal["in_service", "retired"]
    unit: str
    coverages: list[CoverageOut]


# --- member lifecycle (lifecycle.py, transfers.py) ---------------------------------------------------------
class WithdrawalOut(BaseModel):
    member_id: str
    withdrawn_on: date
    periods: list[str]  # the periods whose aid rights end that day
    refund: MoneyOut  # always 0.00: 第十四条 refunds no fee


class FieldWarning(BaseModel):
    loc: list[str | int]
    msg: str
    code: str


class ContactOut(BaseModel):
    member_id: str
    bank_account: str  # masked
    bank_name: str
    phone: str  # masked
    warnings: list[FieldWarning]


class CorrectionOut(BaseModel):
    member_id: str
    corrected: list[str]  # the fields changed


class AuditOut(BaseModel):
    actor: str
    action: str
    at: str
    detail: dict[str, Any]


class ReleaseOut(BaseModel):
    release_id: str
    member_id: str
    from_unit: str
    to_unit: str | None
    reason: str
    released_at: str


class RevealOut(BaseModel):
    """Only the fields asked for are present (the others are left out, not null)."""

    member_id: str
    certno: str | None = None
    phone: str | None = None
    bank_account: str | None = None


# --- fees (fees.py) ----------------------------------------------------------------------------------------
class RemittanceOut(BaseModel):
    remittance_id: str
    period: str
    office: str
    amount: MoneyOut
    reference: str
    remitted_at: date


class UnitRemittanceRow(BaseModel):
    unit: str
    name: str
    rosters: int
    members: int
    members_covered: int
    fees_due: MoneyOut
    fees_received: MoneyOut
    unpaid: MoneyOut


class OfficeRemittanceRow(BaseModel):
    office: str
    name: str
    units: list[UnitRemittanceRow]
    fees_due: MoneyOut
    fees_received: MoneyOut
    remitted: MoneyOut
    gap: MoneyOut  # received from units - remitted to the centre
    status: Literal["matched", "to_remit", "over_remitted"]


class RemittanceTotals(BaseModel):
    fees_due: MoneyOut
    fees_received: MoneyOut
    remitted: MoneyOut
    gap: MoneyOut


class RemittanceReportOut(BaseModel):
    period: str
    offices: list[OfficeRemittanceRow]
    totals: RemittanceTotals


# --- logins (logins.py) ------------------------------------------------------------------------------------
class TokenOut(BaseModel):
    access_token: str
    token_type: Literal["bearer"]
    expires_in: int  # seconds
    role: Role
    org: str | None
    member_id: str | None


class PasswordChangedOut(BaseModel):
    username: str
    changed: bool
