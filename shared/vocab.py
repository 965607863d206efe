"""The project's one vocabulary: organisation levels, roles and statuses, defined once and used by every service.

Each is a ``StrEnum``, so a member compares equal to the string stored in the database and sent in events
(``ClaimStatus.PAID == "paid"``); the values are the public contract of docs/API.md and must not change.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["LEVEL_NAME_ZH", "LEVEL_REVIEWER", "ORG_LEVELS", "REVIEWER_LEVEL", "REVIEW_LEVELS", "BatchStatus", "ClaimSource", "ClaimStatus", "EnrolmentStatus", "InstructionStatus",
           "OrgLevel", "Role", "RosterStatus"]


class OrgLevel(StrEnum):
    """The union hierarchy, top down (seed 003 第十条: 基层工会 -> 代办点 -> 办事处 -> 中心)."""

    CENTRE = "centre"
    OFFICE = "office"
    AGENCY_POINT = "agency_point"
    UNIT = "unit"


#: Top down: a level's parent is the one before it.
ORG_LEVELS: tuple[OrgLevel, ...] = (OrgLevel.CENTRE, OrgLevel.OFFICE, OrgLevel.AGENCY_POINT, OrgLevel.UNIT)
#: The levels a claim passes through, bottom up: the unit submits, the others approve within their authority.
REVIEW_LEVELS: tuple[OrgLevel, ...] = (OrgLevel.UNIT, OrgLevel.AGENCY_POINT, OrgLevel.OFFICE, OrgLevel.CENTRE)


class Role(StrEnum):
    ADMIN = "admin"
    CENTRE_REVIEWER = "centre_reviewer"
    OFFICE_REVIEWER = "office_reviewer"
    AGENCY_REVIEWER = "agency_reviewer"
    UNIT_AGENT = "unit_agent"
    FINANCE = "finance"
    BUREAU = "bureau"
    MEMBER = "member"


#: The level each reviewer role approves at.
REVIEWER_LEVEL: dict[str, OrgLevel] = {  # keyed by Role (a str)
    Role.AGENCY_REVIEWER: OrgLevel.AGENCY_POINT,
    Role.OFFICE_REVIEWER: OrgLevel.OFFICE,
    Role.CENTRE_REVIEWER: OrgLevel.CENTRE,
}
#: The reviewer role of each reviewing level (the other way round).
LEVEL_REVIEWER: dict[str, Role] = {level: Role(role) for role, level in REVIEWER_LEVEL.items()}
#: Each level as members and staff read it (seed 003: 基层工会, 代办点, 办事处, 互助中心).
LEVEL_NAME_ZH: dict[str, str] = {OrgLevel.UNIT: "基层工会", OrgLevel.AGENCY_POINT: "代办点", OrgLevel.OFFICE: "办事处",
                                 OrgLevel.CENTRE: "互助中心"}


class ClaimStatus(StrEnum):
    """A claim's status. ``submitted`` only between intake and the first routing step; ``returned``: sent back to
    the unit for more documents; ``payment_failed``: the bank refused the transfer (finance re-issues)."""

    SUBMITTED = "submitted"
    IN_REVIEW = "in_review"
    RETURNED = "returned"
    APPROVED = "approved"
    PAYMENT_FAILED = "payment_failed"
    PAID = "paid"
    REJECTED = "rejected"
    REVOKED = "revoked"


class ClaimSource(StrEnum):
    """Where a claim came from: an application, or the bureau's settlement record with no application (a plan's
    ``auto_claim``, 免申即享; issue #12)."""

    APPLICATION = "application"
    BUREAU = "bureau"


class InstructionStatus(StrEnum):
    """A payment instruction's status. ``held``: the payee's account changed in the last days (setting
    ``PAYMENTS_ACCOUNT_CHANGE_HOLD_DAYS``); not cut into any batch until a finance officer confirms it."""

    PENDING = "pending"
    HELD = "held"
    BATCHED = "batched"
    PAID = "paid"
    FAILED = "failed"
    CANCELLED = "cancelled"


class RosterStatus(StrEnum):
    """A unit's roster of a period: ``awaiting_payment`` until its fees reach the total (第四条), then ``active``."""

    AWAITING_PAYMENT = "awaiting_payment"
    ACTIVE = "active"


class EnrolmentStatus(StrEnum):
    """A member's enrolment in a period: ``pending`` until the roster's fees are paid, ``covered`` from then,
    ``withdrawn`` when the member left before cover or was released."""

    PENDING = "pending"
    COVERED = "covered"
    WITHDRAWN = "withdrawn"


class BatchStatus(StrEnum):
    """A payment batch: cut (``awaiting_release``), released by a second officer, ``settled`` when the bank's
    results are in for every line, or ``voided`` (its lines go back to pending)."""

    AWAITING_RELEASE = "awaiting_release"
    RELEASED = "released"
    SETTLED = "settled"
    VOIDED = "voided"
