"""The approval state machine of a claim (seed 003 第十条), pure: ``decide`` takes the claim's state, who acts,
what they decide and the instant, and returns the :class:`Transition` (the new state, the audit step and the
events to publish). The service applies it; nothing here reads a clock, a database or a broker.

第十条: an aid up to 3,000 yuan is approved by the agency point, up to 10,000 by the office, above that by the
centre (the rulebook's tiers; ``domain.routing``), each lower tier reviewing and passing the claim up; a complete
application is settled within 5 working days at each level (``sla_working_days``). A return for documents stops
the clock; the resubmission restarts it in full at the level that returned it. 第十三条: fraud found by the centre
revokes the claim (and the member's right to claim in the period). 第九条 ("凭医保部门提供的住院结算数据"): a
plan whose rulebook says ``settlement_source: bureau_required`` gives no final approval to a claim whose
settlement the bureau has not sent (``unverified``): 409 ``settlement_unverified`` until the record arrives
(:func:`settlement_hold`); ``bureau_preferred`` approves it with a warning for the reviewer
(:func:`settlement_warning`); ``paper_allowed`` approves it as any other.

    status      decision   by                         -> status     level
    in_review   approve    reviewer at current level  -> in_review  next level of the path (clock restarts)
    in_review   approve    reviewer at final level    -> approved   none (claim.approved); refused 409 while
                                                                        the plan needs the bureau's record
    in_review   reject     reviewer at current level  -> rejected   none (claim.rejected; later stays reassessed)
    in_review   return     reviewer at current level  -> returned   clock stopped (claim.returned)
    returned    resubmit   unit agent                 -> in_review  the level that returned it (clock restarts)
    any but rejected/revoked  revoke  centre reviewer -> revoked    none (claim.revoked; right to claim ends)
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from services.claims.domain.intake import Refusal
from services.claims.domain.workdays import DueDate, WorkCalendar, add_working_days
from shared.auth import Principal
from shared.errors import Conflict, Forbidden, Invalid
from shared.events import ClaimApproved, ClaimRejected, ClaimReturned, ClaimRevoked, ClaimSubmitted, EventPayload
from shared.vocab import REVIEWER_LEVEL, ClaimStatus, OrgLevel

__all__ = ["ClaimState", "Decision", "Step", "Transition", "day_of", "decide", "level_due", "settlement_hold",
           "settlement_warning", "submitted"]

DecisionKind = Literal["approve", "reject", "return", "resubmit", "revoke"]
ENDED = (ClaimStatus.REJECTED, ClaimStatus.REVOKED)


def day_of(at: datetime) -> date:
    """The calendar day of an instant in the service's own zone: the one day every due date counts from."""
    return at.astimezone().date()


def level_due(entered_at: datetime, sla_working_days: int, calendar: WorkCalendar | None) -> DueDate:
    """第十条: the due date of a level reached at ``entered_at``: ``sla_working_days`` working days after that
    day (the day itself does not count). The one due-date function: intake, every decision and the calendar's
    recomputation all count from the claim's ``level_entered_at`` through here."""
    return add_working_days(day_of(entered_at), sla_working_days, calendar)


@dataclass(frozen=True)
class ClaimState:
    claim_id: str
    member_id: str
    period: str | None
    plan: str
    status: ClaimStatus
    aid_amount: Decimal | None = None
    rulebook_code: str | None = None
    review_path: tuple[str, ...] = ()
    current_level: str | None = None
    final_level: str | None = None
    returned_level: str | None = None
    level_entered_at: datetime | None = None
    due_date: date | None = None
    due_warning: str | None = None
    deciders: frozenset[str] = frozenset()  # users who already decided a step (never the same person twice)
    sla_working_days: int = 5
    settlement_status: str | None = None  # verified | mismatch | unverified (domain/settlement_check.py)
    settlement_source: str = "paper_allowed"  # the plan's rulebook key (shared/rulebook.py)
    settlement_of_another: bool = False  # the bureau's record under the claim's setl_id is another person's


def settlement_hold(source: str, status: str | None, of_another: bool = False) -> str | None:
    """Why a claim may not get its final approval yet (第九条), in Chinese, or None: a record of the claim's
    settlement that is another person's stay holds it whatever the rulebook says; otherwise only
    ``bureau_required`` holds, and only a claim the bureau's record has not checked (``unverified``)."""
    if of_another:
        return "医保部门推送的该结算单属于另一人，不能按此结算单批准补助，请核查后驳回或更正。"
    if source == "bureau_required" and status == "unverified":
        return "本项目须凭医保部门提供的住院结算数据核定补助（第九条），医保部门尚未推送该结算单，暂不能终审批准。"
    return None


def settlement_warning(source: str, status: str | None) -> str | None:
    """What the reviewer is told about a claim with no bureau record, or None."""
    if status != "unverified":
        return None
    if source == "bureau_required":
        return "医保部门尚未推送该结算单：收到结算数据前不能终审批准（第九条）。"
    if source == "bureau_preferred":
        return "医保部门尚未推送该结算单：补助按申请人填写的结算数据核定，请核对医院收据和结算单（第九条）。"
    return None


@dataclass(frozen=True)
class Decision:
    kind: DecisionKind
    reason: str | None = None
    reason_code: str | None = None


@dataclass(frozen=True)
class Step:
    level: str
    decision: str
    reason: str | None = None


@dataclass(frozen=True)
class Transition:
    """The claim's state after a decision, the audit step to record and the events to publish."""

    state: ClaimState
    step: Step
    events: tuple[EventPayload, ...] = ()
    rejection: Refusal | None = None
    revoke_right: bool = False  # 第十三条: record that the member's right to claim in the period ended
    reassess_cause: str | None = None  # the member's other live stays in the period are assessed again


def _enter(state: ClaimState, level: str, now: datetime, calendar: WorkCalendar | None) -> ClaimState:
    due = level_due(now, state.sla_working_days, calendar)
    return replace(state, status=ClaimStatus.IN_REVIEW, current_level=level, returned_level=None,
                   level_entered_at=now, due_date=due.due, due_warning=due.warning)


def submitted(state: ClaimState, refusal: Refusal | None, now: datetime,
              calendar: WorkCalendar | None) -> Transition:
    """A new claim: refused at intake (rejected at once), or entering the first level of its review path."""
    if refusal is not None:
        new = replace(state, status=ClaimStatus.REJECTED, current_level=None, due_date=None)
        events: tuple[EventPayload, ...] = (
            ClaimSubmitted(claim_id=new.claim_id, member_id=new.member_id, period=new.period or "",
                           status=new.status, aid_amount=new.aid_amount),
            ClaimRejected(claim_id=new.claim_id, member_id=new.member_id, period=new.period or "",
                          code=refusal.code, detail=refusal.detail))
        return Transition(new, Step(OrgLevel.UNIT, "submit"), events, rejection=refusal)
    if not state.review_path:
        raise ValueError("a claim admitted to review needs a review path")
    new = replace(_enter(state, state.review_path[0], now, calendar), final_level=state.review_path[-1])
    return Transition(new, Step(OrgLevel.UNIT, "submit"), (ClaimSubmitted(
        claim_id=new.claim_id, member_id=new.member_id, period=new.period or "", status=new.status,
        aid_amount=new.aid_amount),))


def decide(state: ClaimState, actor: Principal, decision: Decision, now: datetime,
           calendar: WorkCalendar | None = None) -> Transition:
    """The transition of ``decision`` by ``actor`` at ``now`` (see the table above), or the refusal of it as a
    problem: 403 ``not_your_level`` / ``same_person_twice``, 409 ``not_returned`` / ``not_revocable`` /
    ``settlement_unverified`` / ``settlement_of_another_person``, 422
    ``reason_required``."""
    if decision.kind == "resubmit":
        return _resubmit(state, decision, now, calendar)
    if decision.kind == "revoke":
        return _revoke(state, decision)
    level = REVIEWER_LEVEL.get(actor.role)
    if level is None or state.status != ClaimStatus.IN_REVIEW or state.current_level != level \
            or actor.org_level != level:
        raise Forbidden(f"该申请当前不在您这一级（{level}）待审。", code="not_your_level")
    if actor.user_id in state.deciders:
        raise Forbidden("同一人不能审批同一申请的两个环节。", code="same_person_twice")
    if decision.kind != "approve" and not (decision.reason or "").strip():
        raise Invalid("驳回或退回必须写明原因。", code="reason_required",
                      errors=[{"loc": ["body", "reason"], "msg": "必须写明原因"}])
    step = Step(level, decision.kind, decision.reason)
    if decision.kind == "approve":
        if level == state.final_level:
            hold = settlement_hold(state.settlement_source, state.settlement_status, state.settlement_of_another)
            if hold is not None:
                raise Conflict(hold, code="settlement_of_another_person" if state.settlement_of_another
                               else "settlement_unverified")
            new = replace(state, status=ClaimStatus.APPROVED, current_level=None, due_date=None)
            return Transition(new, step, (ClaimApproved(
                claim_id=new.claim_id, member_id=new.member_id, period=new.period or "", plan=new.plan,
                aid_amount=new.aid_amount or Decimal("0.00"), rulebook_code=new.rulebook_code or ""),))
        following = state.review_path[state.review_path.index(level) + 1]
        return Transition(_enter(state, following, now, calendar), step)
    if decision.kind == "reject":
        refusal = Refusal(decision.reason_code or "rejected_by_reviewer", decision.reason or "")
        new = replace(state, status=ClaimStatus.REJECTED, current_level=None, due_date=None)
        return Transition(new, step, (ClaimRejected(
            claim_id=new.claim_id, member_id=new.member_id, period=new.period or "", code=refusal.code,
            detail=refusal.detail),), rejection=refusal, reassess_cause="late_rejection")
    # return for documents: the clock stops; the resubmission restarts it
    new = replace(state, status=ClaimStatus.RETURNED, returned_level=level, due_date=None)
    return Transition(new, step, (ClaimReturned(claim_id=new.claim_id, member_id=new.member_id, level=level,
                                                reason=decision.reason or ""),))


def _resubmit(state: ClaimState, decision: Decision, now: datetime, calendar: WorkCalendar | None) -> Transition:
    if state.status != ClaimStatus.RETURNED or state.returned_level is None:
        raise Conflict("只有被退回的申请可以重新提交。", code="not_returned")
    # 第十条 counts 5 working days for a complete application: the clock restarts in full at resubmission.
    return Transition(_enter(state, state.returned_level, now, calendar),
                      Step(OrgLevel.UNIT, "resubmit", decision.reason))


def _revoke(state: ClaimState, decision: Decision) -> Transition:
    if state.status in ENDED:
        raise Conflict("该申请已驳回或已撤销。", code="not_revocable")
    new = replace(state, status=ClaimStatus.REVOKED, current_level=None, due_date=None)
    return Transition(new, Step(OrgLevel.CENTRE, "revoke", decision.reason), (ClaimRevoked(
        claim_id=new.claim_id, member_id=new.member_id, period=new.period or "", reason=decision.reason or ""),),
        revoke_right=new.period is not None, reassess_cause="revoked_for_fraud")
