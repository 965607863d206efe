"""Claims' request and response models (docs/API.md "Claims (8002)"): what comes in, and what goes back, so
the OpenAPI document describes both. Money goes out as ``MoneyOut`` ("1260.00"), statuses and levels as the
enums of ``shared.vocab``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.claims.domain.clock import claim_clock
from services.claims.domain.settlement import is_amount
from services.claims.models import Claim, ClaimAdjustment, ClaimStep
from shared.errors import Invalid
from shared.fields import Money, PastDate, SaneDate, money_problem
from shared.rulebook import ExclusionCheck
from shared.schemas import MoneyOut
from shared.vocab import ClaimSource, ClaimStatus, InstructionStatus, OrgLevel

#: A claim in one of these has had its final approval (the clock's second mark).
FOLLOWS_APPROVAL = (ClaimStatus.APPROVED, ClaimStatus.PAYMENT_FAILED, ClaimStatus.PAID)


# --- input ---------------------------------------------------------------------------------------------------
class Diagnosis(BaseModel):
    icd10: str = Field(min_length=1, max_length=20)
    name: str = Field(default="", max_length=200)


class SettlementIn(BaseModel):
    model_config = ConfigDict(extra="allow")  # every national field is kept as sent
    setl_id: str = Field(min_length=1, max_length=60)
    med_type: str = Field(min_length=1, max_length=10)
    medfee_sumamt: Money
    fund_pay_sumamt: Money
    psn_part_amt: Money
    fulamt_ownpay_amt: Money = Decimal("0.00")

    def amounts(self) -> dict[str, Decimal]:
        out: dict[str, Decimal] = {}
        for name, value in self.model_dump().items():
            if isinstance(value, Decimal):
                out[name] = value
            elif isinstance(value, str | int) and name.endswith(("_amt", "_pay", "_sumamt")):
                try:
                    out[name] = Decimal(str(value))
                except InvalidOperation:
                    raise Invalid(f"{name} 必须是金额。", errors=[{"loc": ["body", "settlement", name],
                                                                  "msg": "必须是金额"}]) from None
            if name in out and not is_amount(out[name]):  # NaN, infinities, beyond decimal(16,2)
                raise Invalid(f"{name} 必须是有限的金额（不超过 14 位整数）。",
                              errors=[{"loc": ["body", "settlement", name], "msg": "必须是有限的金额"}])
            if name in out and (problem := money_problem(out[name])):
                raise Invalid(f"{name}：{problem}。", errors=[{"loc": ["body", "settlement", name],
                                                             "msg": problem}])
        return out


class BeneficiaryIn(BaseModel):
    """The person a `beneficiary: child` plan pays for (seed 002 子女意外伤害): the member's child, by name and ID
    number (the birth date, hence the age on the event date, comes from the number)."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=100)
    certno: str = Field(min_length=15, max_length=18)


class ClaimIn(BaseModel):
    """A claim as submitted. With ``setl_id`` of a settlement the bureau has sent, the rest may be left out and
    is taken from the record (issue #12); a member may leave out who they are (one-tap claim).

    Two kinds of claim name no settlement (issue #16): second aid for the member's whole period (``period``,
    ``other_assistance``; seed 000) and a graded sum (``grade``, ``event_date``, ``beneficiary`` for a child's
    plan; seed 002)."""

    model_config = ConfigDict(extra="forbid")
    member_id: str | None = Field(default=None, max_length=40)
    certno: str | None = Field(default=None, min_length=15, max_length=18)  # 15 digits: matched as its 18-digit form
    plan: str = Field(default="inpatient", max_length=50)
    setl_id: str | None = Field(default=None, min_length=1, max_length=60)
    admission_date: SaneDate | None = None
    discharge_date: PastDate | None = None  # a claim is made after the stay
    diagnosis: Diagnosis | None = None
    settlement: SettlementIn | None = None
    # Refused with 422 `second_aid_per_period` (service.submit): second aid is claimed per member and period, on
    # figures the system holds, never on typed-in ones (issue #16 item 1, issue #12 item 3).
    second_aid: Any = None
    period: str | None = Field(default=None, min_length=1, max_length=50)  # second aid for the member's period
    other_assistance: Money | None = None  # other union assistance (工会救助) recorded for the period, seed 000
    grade: str | None = Field(default=None, min_length=1, max_length=50)  # a graded plan's grade code
    event_date: PastDate | None = None  # the day of the accident (graded plans)
    beneficiary: BeneficiaryIn | None = None  # the child, for a `beneficiary: child` plan

    @property
    def names_no_settlement(self) -> bool:
        """Second aid per period or a graded sum: claimed without a settlement (issue #16)."""
        return self.settlement is None and self.setl_id is None and (
            self.period is not None or self.grade is not None or self.event_date is not None)

    @model_validator(mode="after")
    def _check(self) -> ClaimIn:
        if self.settlement is None and self.setl_id is None and not self.names_no_settlement:
            raise ValueError("settlement 或 setl_id 必须提供一个（二次补助按期申请时给出 period，分级给付时给出 grade 和 event_date）")
        if not self.names_no_settlement and any(v is not None for v in (
                self.period, self.other_assistance, self.grade, self.event_date, self.beneficiary)):
            raise ValueError("period、other_assistance、grade、event_date、beneficiary 只用于不凭结算单的申请")
        if self.names_no_settlement and self.period is not None and any(v is not None for v in (
                self.grade, self.event_date, self.beneficiary)):
            raise ValueError("二次补助按期申请（period）不填写 grade、event_date、beneficiary")
        if self.names_no_settlement and self.period is None and self.other_assistance is not None:
            raise ValueError("other_assistance 只用于二次补助按期申请（period）")
        if self.settlement is not None and self.setl_id is not None and self.settlement.setl_id != self.setl_id:
            raise ValueError("setl_id 与 settlement.setl_id 不一致")
        if self.admission_date and self.discharge_date and self.discharge_date < self.admission_date:
            raise ValueError("出院日期不能早于入院日期")
        return self


@dataclass(frozen=True)
class ClaimFacts:
    """A claim with every field known: as typed in, completed and corrected by the bureau's record."""

    member_id: str | None
    certno: str | None
    plan: str
    admission_date: date
    discharge_date: date
    diagnosis: Diagnosis
    settlement: SettlementIn


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    decision: Literal["approve", "reject", "return"]
    reason: str | None = Field(default=None, max_length=1000)
    reason_code: str | None = Field(default=None, max_length=50)
    # 第十二条: the reviewer's answer to each item of the rulebook's exclusions checklist (true: the exclusion
    # applies). Required in full, all false, on the approving decision where the rulebook has a checklist.
    exclusions_checklist: dict[Annotated[str, Field(max_length=50)], bool] | None = Field(
        default=None, max_length=50, examples=[{"fight_or_drunkenness": False, "third_party_liability": False}])


class NoteIn(BaseModel):
    note: str = Field(default="", max_length=1000)


class ReasonIn(BaseModel):
    reason: str = Field(min_length=1, max_length=1000)


# --- output --------------------------------------------------------------------------------------------------
class RejectionOut(BaseModel):
    code: str
    detail: str | None = None


class StepOut(BaseModel):
    level: OrgLevel | None
    decision: str  # submit | approve | reject | return | resubmit | revoke
    by: str
    at: datetime
    reason: str | None = None
    rulebook: str | None = None
    exclusions_checklist: dict[str, bool] | None = None  # the answers recorded with this decision (第十二条)


class ExclusionCheckOut(BaseModel):
    """An exclusion of 第十二条 no data shows, for the reviewer to answer, with the latest answer recorded."""

    code: str
    text: str
    article: str
    applies: bool | None = None  # null: not answered yet
    answered_by: str | None = None
    answered_at: datetime | None = None


class ApprovalOut(BaseModel):
    current_level: OrgLevel | None
    final_level: OrgLevel | None
    due_date: date | None
    due_warning: str | None
    steps: list[StepOut]


class AdjustmentOut(BaseModel):
    adjustment_id: str
    amount: MoneyOut
    aid_before: MoneyOut
    aid_after: MoneyOut
    cause: str
    cause_claim_id: str | None
    reason: str
    rulebook: str | None
    announced: bool
    by: str
    at: datetime


class PaymentOut(BaseModel):
    instruction_id: str
    status: InstructionStatus | None


class SettlementCheckOut(BaseModel):
    """The claim against the bureau's record: ``verified``, ``mismatch`` (with the typed-in and bureau values of
    each differing field) or ``unverified`` (no record from the bureau)."""

    status: Literal["verified", "mismatch", "unverified"]
    differences: dict[str, dict[str, str]] = {}


class ClaimSubmittedOut(BaseModel):
    claim_id: str
    status: ClaimStatus
    aid_amount: MoneyOut | None
    rejection: RejectionOut | None
    settlement_check: SettlementCheckOut | None = None


class ClockOut(BaseModel):
    """Whole days from the discharge to the claim's submission, final approval and payment (null until reached)."""

    days_to_submission: int | None
    days_to_approval: int | None
    days_to_payment: int | None


class ClaimOut(BaseModel):
    claim_id: str
    member_id: str
    period: str | None
    plan: str
    status: ClaimStatus
    aid_amount: MoneyOut | None
    base: MoneyOut | None
    cumulative_base: MoneyOut | None
    assessed_aid_amount: MoneyOut | None
    adjustments: list[AdjustmentOut]
    second_aid: dict[str, Any] | None
    explanation: str | None
    rulebook: str | None
    setl_id: str
    settlement_check: SettlementCheckOut | None
    admission_date: date
    discharge_date: date
    diagnosis: dict[str, Any]
    rejection: RejectionOut | None
    approval: ApprovalOut
    payment: PaymentOut | None
    unit: str | None
    submitted_by: str
    submitter_org: str | None
    created_at: datetime | None
    clock: ClockOut
    # application, or bureau: made from the bureau's settlement record with no application (auto_claim, 免申即享)
    source: ClaimSource = ClaimSource.APPLICATION
    # 第十二条: the exclusions the reviewer answers (the period's rulebook `exclusions_checklist`), [] if none.
    exclusions_checklist: list[ExclusionCheckOut] = []

    @classmethod
    def of(cls, claim: Claim, steps: list[ClaimStep], adjustments: list[ClaimAdjustment],
           paid_at: datetime | None = None, checklist: Sequence[ExclusionCheck] | None = None) -> ClaimOut:
        approved_at = max((s.at for s in steps if s.decision == "approve" and s.level == claim.final_level),
                          default=None) if claim.status in FOLLOWS_APPROVAL else None
        clock = claim_clock(claim.discharge_date, claim.created_at, approved_at,
                            paid_at if claim.status == ClaimStatus.PAID else None)
        return cls(
            claim_id=str(claim.id), member_id=claim.member_id, period=claim.period, plan=claim.plan,
            status=ClaimStatus(claim.status), aid_amount=claim.aid_amount, base=claim.base,
            cumulative_base=claim.cumulative_base, assessed_aid_amount=claim.assessed_aid,
            adjustments=[AdjustmentOut(
                adjustment_id=str(a.id), amount=a.amount, aid_before=a.aid_before, aid_after=a.aid_after,
                cause=a.cause, cause_claim_id=str(a.cause_claim_id) if a.cause_claim_id else None, reason=a.reason,
                rulebook=a.rulebook_code, announced=a.announced, by=a.by_username, at=a.at) for a in adjustments],
            second_aid=claim.second_aid, explanation=claim.explanation, rulebook=claim.rulebook_code,
            setl_id=claim.setl_id, settlement_check=check_of(claim), admission_date=claim.admission_date, discharge_date=claim.discharge_date,
            diagnosis=claim.diagnosis, rejection=rejection_of(claim),
            approval=ApprovalOut(
                current_level=level_of(claim.current_level), final_level=level_of(claim.final_level),
                due_date=claim.due_date, due_warning=claim.due_warning,
                steps=[StepOut(level=level_of(s.level), decision=s.decision, by=s.by_username, at=s.at,
                               reason=s.reason, rulebook=s.rulebook_code, exclusions_checklist=s.exclusions)
                       for s in steps]),
            payment=PaymentOut(instruction_id=claim.payment_instruction_id,
                               status=InstructionStatus(claim.payment_status) if claim.payment_status else None)
            if claim.payment_instruction_id else None,
            unit=claim.unit, submitted_by=claim.submitted_by, submitter_org=claim.submitter_org,
            created_at=claim.created_at, clock=ClockOut(**asdict(clock)),
            source=ClaimSource(claim.source or ClaimSource.APPLICATION),
            exclusions_checklist=checklist_of(checklist, steps))


def checklist_of(checklist: Sequence[ExclusionCheck] | None, steps: list[ClaimStep]) -> list[ExclusionCheckOut]:
    """Each item of the checklist with the latest answer a decision recorded for it."""
    out = []
    for item in checklist or ():
        answered = next((s for s in reversed(steps) if s.exclusions and item.code in s.exclusions), None)
        out.append(ExclusionCheckOut(
            code=item.code, text=item.text, article=item.article,
            applies=answered.exclusions[item.code] if answered and answered.exclusions else None,
            answered_by=answered.by_username if answered else None, answered_at=answered.at if answered else None))
    return out


def level_of(level: str | None) -> OrgLevel | None:
    return OrgLevel(level) if level else None


def check_of(claim: Claim) -> SettlementCheckOut | None:
    return SettlementCheckOut.model_validate(claim.settlement_check) if claim.settlement_check else None


def rejection_of(claim: Claim) -> RejectionOut | None:
    return RejectionOut(code=claim.rejection_code, detail=claim.rejection_detail) if claim.rejection_code else None


class ReviewItemOut(BaseModel):
    """A claim waiting at the caller's level, with what is still missing from it."""

    claim_id: str
    member_id: str
    period: str | None
    plan: str
    aid_amount: MoneyOut | None
    base: MoneyOut | None
    current_level: OrgLevel | None
    final_level: OrgLevel | None
    due_date: date | None
    due_warning: str | None
    overdue: bool
    waiting_since: datetime | None
    unit: str | None
    documents: list[str]
    missing_documents: list[str]
    missing_documents_zh: list[str]
    # The claim against the bureau's record, and what the plan's settlement_source (第九条) makes of a claim
    # the bureau has not sent: a hold before final approval (bureau_required) or a warning (bureau_preferred).
    settlement_check: SettlementCheckOut | None = None
    settlement_warning: str | None = None


class CoverageOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    member_id: str
    period: str
    plans: list[str]
    from_: date = Field(alias="from")
    to: date
    ended_on: date | None
    unit: str


class ClaimListItem(BaseModel):
    """One claim of a work list; the member's ID number is masked (as everywhere personal data is shown)."""

    claim_id: str
    member_id: str
    certno_masked: str | None
    period: str | None
    plan: str
    status: ClaimStatus
    aid_amount: MoneyOut | None
    current_level: OrgLevel | None
    final_level: OrgLevel | None
    due_date: date | None
    unit: str | None
    submitter_org: str | None
    setl_id: str
    discharge_date: date
    rejection_code: str | None
    submitted_at: datetime




# --- documents, overdue, calendar, stats ------------------------------------------------------------------------
class DocumentOut(BaseModel):
    document_id: str
    claim_id: str
    doc_type: str
    doc_type_zh: str
    filename: str
    content_type: str
    size: int
    sha256: str
    uploaded_by: str
    uploaded_at: datetime


class DocumentListOut(BaseModel):
    claim_id: str
    documents: list[DocumentOut]
    missing_documents: list[str]
    missing_documents_zh: list[str]


class OverdueItemOut(BaseModel):
    """A claim past its due date at a level (第十条), with the notices already sent for it at that level."""

    claim_id: str
    member_id: str
    period: str | None
    plan: str
    current_level: OrgLevel | None
    org: str
    due_date: date | None
    due_warning: str | None
    working_days_overdue: int
    aid_amount: MoneyOut | None
    unit: str | None
    notices: list[Literal["reminder", "escalation"]]


class CalendarDayOut(BaseModel):
    date: date
    name: str


class CalendarYearOut(BaseModel):
    year: int
    known: bool
    source: str | None
    updated_by: str | None
    updated_at: datetime | None
    holidays: list[CalendarDayOut]
    workdays: list[CalendarDayOut]
    warning: str | None
    deadlines_recomputed: int | None = None  # after a change: in-review due dates counted again


class OverdueStats(BaseModel):
    count: int
    by_level: dict[str, int]


class DayBucket(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    from_: int = Field(alias="from")
    to: int | None
    count: int


class DayFigures(BaseModel):
    """Whole days from discharge (each claim's clock): median, 90th percentile (nearest rank), distribution."""

    count: int
    median: float | None
    p90: int | None
    buckets: list[DayBucket]


class DaysToSubmission(DayFigures):
    claims: int


class DaysToApproval(DayFigures):
    approved_claims: int


class DaysToPayment(DayFigures):
    paid_claims: int


class BureauShare(BaseModel):
    claims: int
    from_bureau: int
    share: float
    definition: str


class AidTotals(BaseModel):
    approved: MoneyOut
    paid: MoneyOut


class MonthFigures(BaseModel):
    month: str
    approved_count: int
    approved: MoneyOut
    paid_count: int
    paid: MoneyOut
