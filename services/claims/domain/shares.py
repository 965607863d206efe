"""Several shares of a plan (seed 002 "自己是不是可以多买几份"): pure, no I/O.

A member who bought ``shares`` shares of a plan with a fee of its own (``member.covered`` carries them; the fee
was already multiplied by enrollment) is due the plan's aid as ``shares`` members would be: every amount the
plan pays or caps by is multiplied, and the aid is then computed by the plan's own engine (aid.py,
benefits.py), which rounds to the fen once, with ``shared.money.to_fen``. Reading (rulebooks/README.md
"Shares"): a share is one more unit of the plan, so

- ``per_day``: ``rate_per_day`` x shares; the days (``deductible_days``, ``max_days_per_period``) are days of the
  member's stay and are not multiplied;
- ``fixed``: each benefit's ``amount`` x shares (one payment a period or term, as for one share);
- ``graded``: each grade's ``amount`` and ``max_aid_per_period`` x shares;
- ``banded``: each band's rate, ``min_aid``, ``max_aid_per_period`` and ``max_aid_per_member`` x shares (the
  bands' bounds are amounts of the member's cost and are not multiplied).

Not multiplied: a plan every union member holds without a fee (``every_union_member``, seed 002 京卡 "不用花一
分钱保费": nobody buys it, so nobody buys more of it), a plan with no fee of its own (covered by the enrolment
fee, not sold in shares), the cover 第十五条 grants (``enrolment.loyalty.grants``: granted, not bought) and
second aid (seed 000: a share of the member's own remaining cost, not a sum bought).
"""

from __future__ import annotations

from decimal import Decimal

from shared.rulebook import AnyPlan, BandedPlan, FixedPlan, GradedPlan, PerDayPlan, Rulebook

__all__ = ["in_shares", "multiplied_by_shares", "shares_note"]


def multiplied_by_shares(rulebook: Rulebook, plan: AnyPlan) -> bool:
    """Whether the member's shares multiply the plan's aid (the module's reading)."""
    if not isinstance(plan, BandedPlan | FixedPlan | PerDayPlan | GradedPlan):
        return False  # second aid
    granted = rulebook.enrolment.loyalty.grants if rulebook.enrolment.loyalty else None
    return plan.fee is not None and not plan.every_union_member and plan.code != granted


def _times(amount: Decimal | None, shares: int) -> Decimal | None:
    return None if amount is None else amount * shares  # an integer times a fen amount: still exact in fen


def in_shares(rulebook: Rulebook, plan: AnyPlan, shares: int) -> AnyPlan:
    """The plan as the member holds it: its amounts times ``shares`` where the shares multiply it, else itself.

    ``shares`` is a whole number >= 1 (enrollment's roster refuses anything else; a coverage from an older
    producer has 1)."""
    if isinstance(shares, bool) or not isinstance(shares, int) or shares < 1:
        raise ValueError(f"shares must be a whole number >= 1, not {shares!r}")
    if shares == 1 or not multiplied_by_shares(rulebook, plan):
        return plan
    if isinstance(plan, PerDayPlan):
        return plan.model_copy(update={"rate_per_day": plan.rate_per_day * shares})
    if isinstance(plan, FixedPlan):
        return plan.model_copy(update={"benefits": [
            b.model_copy(update={"amount": b.amount * shares}) for b in plan.benefits]})
    if isinstance(plan, GradedPlan):
        return plan.model_copy(update={
            "grades": [g.model_copy(update={"amount": g.amount * shares}) for g in plan.grades],
            "max_aid_per_period": _times(plan.max_aid_per_period, shares)})
    assert isinstance(plan, BandedPlan)
    return plan.model_copy(update={
        "bands": [b.model_copy(update={"rate": b.rate * shares}) for b in plan.bands],
        "min_aid": _times(plan.min_aid, shares),
        "max_aid_per_period": _times(plan.max_aid_per_period, shares),
        "max_aid_per_member": _times(plan.max_aid_per_member, shares)})


def shares_note(rulebook: Rulebook, plan: AnyPlan, shares: int) -> str:
    """What the explanation says first when the shares multiplied the plan ('' when they did not)."""
    if shares == 1 or not multiplied_by_shares(rulebook, plan):
        return ""
    return f"按 {shares} 份计（每份的金额、比例和限额乘以 {shares}）；"
