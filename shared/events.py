"""The event envelope and the Pydantic schemas of every event, shared by producers and consumers.

One envelope for every event (docs/ARCHITECTURE.md "Events"); ``key`` is the aggregate id and the Kafka message
key, so one member's or one claim's events stay in order on one partition. Money travels as a decimal
string with two places, never a float.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer

from shared.observability import current_correlation_id

Money = Annotated[Decimal, PlainSerializer(lambda d: f"{d:.2f}", return_type=str, when_used="json")]

TOPIC_ENROLLMENT = "enrollment.events"
TOPIC_CLAIMS = "claims.events"
TOPIC_PAYMENTS = "payments.events"
TOPIC_DEAD_LETTER = "huzhu.dead-letter"
ALL_TOPICS = (TOPIC_ENROLLMENT, TOPIC_CLAIMS, TOPIC_PAYMENTS, TOPIC_DEAD_LETTER)



def _no_empty(value: object) -> object:
    return None if value == "" else value


def _wire(value: str | None) -> str:
    return value or ""


#: A payment event's adjustment: None in code for the claim's own aid. On the wire it stays "" (the event
#: contract of earlier releases), so a consumer not yet upgraded reads a new producer's events during a rolling
#: deploy instead of dead-lettering them; "" read from the wire becomes None.
AdjustmentRef = Annotated[str | None, BeforeValidator(_no_empty), PlainSerializer(_wire, return_type=str)]

class Envelope(BaseModel):
    model_config = ConfigDict(extra="forbid")

    event_id: uuid.UUID
    type: str
    version: int = 1
    occurred_at: datetime
    key: str
    correlation_id: str
    payload: dict[str, Any]


class EventPayload(BaseModel):
    """Base of every payload: ``TYPE`` is the event type, ``KEY`` names the field holding the aggregate id."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    TYPE: ClassVar[str]
    VERSION: ClassVar[int] = 1
    KEY: ClassVar[str]  # the field holding the aggregate id

    def key(self) -> str:
        return str(getattr(self, self.KEY))

    def envelope(self) -> Envelope:
        return Envelope(
            event_id=uuid.uuid4(),
            type=self.TYPE,
            version=self.VERSION,
            occurred_at=datetime.now(UTC),
            key=self.key(),
            correlation_id=current_correlation_id(),
            payload=self.model_dump(mode="json"),
        )


# --- enrollment.events -------------------------------------------------------------------------------
class PeriodPublished(EventPayload):
    TYPE = "period.published"
    period: str
    rulebook: dict[str, Any]  # the rulebook document exactly as loaded (shared.rulebook.to_document)
    revision: int = 1  # > 1: a correction of the period's rules (实施办法), with its reason
    reason: str = ""
    KEY = "period"


class MemberCovered(EventPayload):
    """A member's roster was paid in full: they are covered for the period's plans."""

    TYPE = "member.covered"
    member_id: str
    period: str
    plans: list[str]
    coverage_from: date
    coverage_to: date
    name: str
    certno: str
    sex: str
    member_type: str
    unit: str
    unit_path: list[str]  # organisation codes from the centre down to the unit
    bank_account: str
    bank_name: str
    phone: str
    renewing: bool
    fee: Money
    # The member's version in enrollment (raised by each change of their details); 0 from older producers.
    member_version: int = 0
    # seed 002 "多买几份": shares the member bought of each plan with a fee of its own (`fee` is already
    # multiplied); 1 from older producers. Aid from those plans multiplies by it (rulebooks/README.md); a plan
    # every member holds without a fee (`every_union_member`, 京卡) is not multiplied.
    shares: int = Field(default=1, ge=1)
    KEY = "member_id"


class PeriodHistoryRecorded(EventPayload):
    """People covered in a period run before this system, as the centre's history import recorded them (ID
    numbers in their 18-digit form; a large import comes as several events). Claims counts these periods in a
    member's years of participation (seed 000 二次补助 "职工本人参加医疗互助活动年限")."""

    TYPE = "period.history_recorded"
    period: str
    certnos: list[str]
    KEY = "period"


class MemberSignupCode(EventPayload):
    """A member signing up in the app asked for a code, and their ID number and phone matched the roster: the
    code goes by SMS to that phone only (notifications), never in the app feed or by e-mail (issue #13)."""

    TYPE = "member.signup_code"
    member_id: str
    phone: str
    code: str
    expires_at: datetime
    KEY = "member_id"


class MemberContactCode(EventPayload):
    """A member asked in the app to change their phone or bank account (PATCH /me): the code that confirms it
    goes by SMS to the phone on file before the change, only there, never in a feed or by e-mail (issue #13)."""

    TYPE = "member.contact_code"
    member_id: str
    phone: str
    code: str
    expires_at: datetime
    KEY = "member_id"


class CoverageEnded(EventPayload):
    TYPE = "member.coverage_ended"
    member_id: str
    period: str
    ended_on: date
    reason: str
    KEY = "member_id"


class MemberContactChanged(EventPayload):
    """A new bank account or phone (PATCH members). The member is told at ``previous_phone``, the number
    the change may have taken from them; ``changed_by`` (the user id of who changed it) lets payments keep
    that person from confirming the hold on the new account."""

    TYPE = "member.contact_changed"
    member_id: str
    bank_account: str
    bank_name: str
    phone: str
    name: str
    previous_phone: str = ""
    changed_by: str = ""
    # The member's version in enrollment (raised by each change of their details); 0 from older producers.
    member_version: int = 0
    # The member's e-mail for notifications: None leaves it as it was, "" removes it (issue #13).
    email: str | None = None
    KEY = "member_id"


class MemberDetailsCorrected(EventPayload):
    """An audited admin correction of a member's identity details after the enrolment window."""

    TYPE = "member.details_corrected"
    member_id: str
    name: str
    certno: str
    sex: str
    member_type: str
    # The member's version in enrollment (raised by each change of their details); 0 from older producers.
    member_version: int = 0
    KEY = "member_id"


class LoyaltyGranted(EventPayload):
    """第十五条: periods in a row without aid earned the member the cover the rulebook names."""

    TYPE = "member.loyalty_granted"
    member_id: str
    period: str
    grant: str
    periods_without_aid: list[str]
    # The grant's version in enrollment (1 when first granted, raised by each withdrawal and grant again); 0
    # from older producers. A consumer applies a grant or a withdrawal only over an older version.
    version: int = 0
    KEY = "member_id"


class LoyaltyRevoked(EventPayload):
    """第十五条: aid was found in a period of the grant's chain after the grant (a late approval, an upward
    adjustment): the member did not go ``periods_without_aid`` without aid, and the cover is withdrawn.
    ``aided_periods``: the periods of the chain with aid now."""

    TYPE = "member.loyalty_revoked"
    member_id: str
    period: str
    grant: str
    periods_without_aid: list[str]
    aided_periods: list[str]
    version: int
    KEY = "member_id"


class FeesReceived(EventPayload):
    TYPE = "roster.fees_received"
    roster_id: str
    period: str
    unit: str
    amount: Money
    reference: str
    unit_path: list[str] = []  # centre ... unit, so the office is known before any member is covered
    KEY = "roster_id"


class FeesRemitted(EventPayload):
    """An office transferred pooled fees to the centre (recorded by the centre's finance officer)."""

    TYPE = "fees.remitted"
    remittance_id: str
    period: str
    office: str
    amount: Money
    reference: str
    remitted_at: date
    KEY = "remittance_id"


# --- claims.events -----------------------------------------------------------------------------------
class ClaimSubmitted(EventPayload):
    TYPE = "claim.submitted"
    claim_id: str
    member_id: str
    period: str
    status: str
    aid_amount: Money | None
    KEY = "claim_id"


class ClaimApproved(EventPayload):
    TYPE = "claim.approved"
    claim_id: str
    member_id: str
    period: str
    plan: str
    aid_amount: Money
    rulebook_code: str
    KEY = "claim_id"


class ClaimRejected(EventPayload):
    TYPE = "claim.rejected"
    claim_id: str
    member_id: str
    period: str
    code: str
    detail: str
    KEY = "claim_id"


class ClaimReturned(EventPayload):
    TYPE = "claim.returned"
    claim_id: str
    member_id: str
    level: str
    reason: str
    KEY = "claim_id"


class ClaimAdjusted(EventPayload):
    """A member's aid in a period was re-assessed (an earlier stay rejected late, reversed or revoked): the
    difference for one claim, never a silent change of history. ``amount`` > 0 is a top-up to pay,
    < 0 a recovery to ask back."""

    TYPE = "claim.adjusted"
    adjustment_id: str
    claim_id: str
    member_id: str
    period: str
    amount: Money
    aid_amount: Money  # the claim's aid after the adjustment
    reason: str
    KEY = "claim_id"


class ClaimOverdue(EventPayload):
    """A claim passed its due date at a level (第十条: 5 working days): a reminder, then an escalation."""

    TYPE = "claim.overdue"
    claim_id: str
    member_id: str
    level: str
    org: str  # the reviewing organisation at that level
    due_date: date
    kind: str  # reminder | escalation
    KEY = "claim_id"


class ClaimRevoked(EventPayload):
    TYPE = "claim.revoked"
    claim_id: str
    member_id: str
    period: str
    reason: str
    KEY = "claim_id"


# --- payments.events ---------------------------------------------------------------------------------
class PaymentInstructionCreated(EventPayload):
    TYPE = "payment.instruction_created"
    instruction_id: str
    claim_id: str
    member_id: str
    attempt: int
    amount: Money
    adjustment_id: AdjustmentRef = None  # None for the claim's own aid; a top-up carries its adjustment's id
    KEY = "claim_id"


class PaymentSettled(EventPayload):
    TYPE = "payment.paid"
    instruction_id: str
    claim_id: str
    member_id: str
    amount: Money
    adjustment_id: AdjustmentRef = None  # None for the claim's own aid; a top-up carries its adjustment's id
    attempt: int = 0  # the instruction's attempt (0 from older producers: the claim's live attempt)
    KEY = "claim_id"


class PaymentBatchReleased(EventPayload):
    TYPE = "payment.batch_released"
    batch_id: str
    count: int
    total: Money
    released_by: str
    KEY = "batch_id"


class ReleasedLine(BaseModel):
    """One line of a released batch: whose payment (the claim, and the top-up's adjustment or None) and which
    attempt of it."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    claim_id: str
    instruction_id: str
    attempt: int
    adjustment_id: AdjustmentRef = None


class PaymentBatchLinesReleased(EventPayload):
    """The lines of a released batch, ``part`` of ``parts`` (payment.batch_released names none): a batch of
    100,000 lines goes as many events of at most ``payments.batches.LINES_PER_EVENT`` lines, each far below the
    broker's and the producer's 1 MB message limit. Claims shows "batch released" in the member's timeline."""

    TYPE = "payment.batch_lines_released"
    batch_id: str
    released_at: datetime
    part: int
    parts: int
    lines: list[ReleasedLine]
    KEY = "batch_id"


class PaymentFailed(EventPayload):
    TYPE = "payment.failed"
    instruction_id: str
    claim_id: str
    member_id: str
    reason: str
    adjustment_id: AdjustmentRef = None  # None for the claim's own aid; a top-up carries its adjustment's id
    attempt: int = 0  # the instruction's attempt (0 from older producers: the claim's live attempt)
    KEY = "claim_id"


EVENT_TYPES: dict[str, type[EventPayload]] = {
    cls.TYPE: cls
    for cls in (
        PeriodPublished, PeriodHistoryRecorded, MemberCovered, CoverageEnded, MemberContactChanged,
        MemberDetailsCorrected, MemberSignupCode, MemberContactCode, LoyaltyGranted, LoyaltyRevoked, FeesReceived, FeesRemitted,
        ClaimSubmitted, ClaimApproved, ClaimRejected, ClaimReturned, ClaimAdjusted, ClaimOverdue, ClaimRevoked,
        PaymentInstructionCreated, PaymentBatchReleased, PaymentBatchLinesReleased, PaymentSettled, PaymentFailed,
    )
}


def parse_payload(envelope: Envelope) -> EventPayload:
    """Validate an envelope's payload against its type's schema (raises on an unknown type or bad data)."""
    cls = EVENT_TYPES.get(envelope.type)
    if cls is None:
        raise ValueError(f"unknown event type {envelope.type!r}")
    return cls.model_validate(envelope.payload)
