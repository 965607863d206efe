"""Intake refusals (seed 003): which claims end at submission, without review. Pure: the facts are loaded by
``services.claims.service``, ``today`` is passed in, and a refusal is a value, never a write.

The order is the order a person at the counter checks them: is the stay covered at all (第三条: the discharge
date decides the period), has the member left, did they join the plan, has fraud cancelled their right
(第十三条), is the claim inside the period's claim window (第十一条), is the kind of care excluded (第十二条),
and is the settlement claimed already or cancelled by the bureau.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from services.claims.domain.bureau import ARTICLE, REASON, RULEBOOK_KEY, exclusion
from shared.rulebook import Rulebook

__all__ = ["CoverageFacts", "IntakeFacts", "Refusal", "RulebookMissing", "screen"]


@dataclass(frozen=True)
class Refusal:
    code: str
    detail: str


@dataclass(frozen=True)
class CoverageFacts:
    """The member's coverage whose window contains the discharge date."""

    period: str
    plans: tuple[str, ...]
    ended_on: date | None


@dataclass(frozen=True)
class IntakeFacts:
    plan: str
    discharge_date: date
    med_type: str
    coverage: CoverageFacts | None
    right_revoked: bool = False  # 第十三条: a fraud in the period was found
    settlement_claimed: bool = False  # a live claim of the plan on the same settlement
    settlement_reversed: bool = False  # the bureau reversed the settlement


class RulebookMissing(Exception):
    """The coverage's period has no rulebook here yet: a wait (it always comes), never a refusal."""

    def __init__(self, period: str) -> None:
        super().__init__(period)
        self.period = period


def screen(facts: IntakeFacts, rulebook: Rulebook | None, today: date) -> Refusal | None:
    """The refusal of a claim at intake, or None when it goes on to assessment and review."""
    coverage = facts.coverage
    if coverage is None:  # 第三条 / 第十二条(一): a stay outside the member's coverage
        return Refusal("not_covered", "出院日期不在该人员的参互有效期内，或其未参互。")
    if coverage.ended_on is not None and facts.discharge_date >= coverage.ended_on:
        return Refusal("coverage_ended", f"该人员已于 {coverage.ended_on} 退出，其后不享受互助。")
    if rulebook is None:
        raise RulebookMissing(coverage.period)
    if facts.plan not in coverage.plans or facts.plan not in {plan.code for plan in rulebook.plans}:
        # (a cover granted by 第十五条 under a rulebook that defines no such plan has nothing to claim on)
        return Refusal("plan_not_joined", f"该人员本期未参加 {facts.plan} 项目。")
    if facts.right_revoked:  # 第十三条: fraud cancels the right to claim for the period
        return Refusal("revoked_for_fraud", "该人员本期因欺诈已被取消申请补助的权利。")
    window = rulebook.windows.claims
    if not window.from_ <= today <= window.to:  # 第十一条 补助办理时间
        return Refusal("claim_window_closed", f"本期补助受理时间为 {window.from_} 至 {window.to}。")
    excluded = exclusion({"med_type": facts.med_type})
    if excluded is not None and RULEBOOK_KEY[excluded] in rulebook.exclusions:  # 第十二条 as the rulebook lists it
        return Refusal(excluded.value, f"{REASON[excluded]}（{ARTICLE[excluded]}），医疗类别 {facts.med_type}。")
    med_types = getattr(rulebook.plan(facts.plan), "med_types", None)
    if med_types is not None and facts.med_type not in med_types:  # 第六条: only the kinds of care the plan names
        return Refusal("med_type_not_covered", f"医疗类别 {facts.med_type} 不在本项目补助范围内。")
    if facts.settlement_claimed:
        return Refusal("duplicate_settlement", "该结算单已申请过补助。")
    if facts.settlement_reversed:
        return Refusal("settlement_reversed", "医保部门已冲销该结算单。")
    return None
