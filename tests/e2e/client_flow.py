"""The e2e flow a mobile or integration team would write with a client generated from our OpenAPI documents
(issue #10 "Typed API"): roster -> fees -> claim -> approvals -> payment instruction.

Not a test module: `test_generated_client.py` generates the package ``huzhu_client`` (one module per service,
datamodel-code-generator) into a temporary directory, runs ``mypy --strict`` over this file against it, and runs
``run_flow`` against the live stack, so every answer is parsed by the generated models. An attribute the documents
do not declare, or a type they declare otherwise, fails the type check.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, Protocol

from huzhu_client import claims, enrollment, payments  # generated at test time

from deploy.client import ApiError


class Api(Protocol):
    def get(self, service: str, path: str, **kw: Any) -> Any: ...

    def post(self, service: str, path: str, **kw: Any) -> Any: ...


@dataclass(frozen=True)
class FlowResult:
    roster: enrollment.RosterOut
    claim: claims.ClaimOut
    instructions: list[payments.InstructionOut]


def submit_roster(agent: Api, period: str, unit: str, people: list[dict[str, Any]]) -> enrollment.RosterOut:
    staff = {"total": len(people), "in_service": len(people), "basic_insured_in_service": len(people)}
    submitted = enrollment.RosterSubmitted.model_validate(agent.post(
        "enrollment", f"/api/v1/periods/{period}/units/{unit}/rosters", json={"staff": staff, "members": people}))
    assert submitted.status is enrollment.RosterStatus.awaiting_payment, submitted.status
    payment = enrollment.PaymentIn(amount=submitted.fee_total, reference=f"GEN-{submitted.roster_id[:8]}",
                                   paid_at=date.today())
    return enrollment.RosterOut.model_validate(agent.post(
        "enrollment", f"/api/v1/rosters/{submitted.roster_id}/payments", json=payment.model_dump(mode="json")))


def member_by_certno(agent: Api, certno: str) -> enrollment.MemberOut:
    found = [enrollment.MemberOut.model_validate(m)
             for m in agent.get("enrollment", "/api/v1/members", params={"certno": certno})]
    assert len(found) == 1, found
    return found[0]


def claim_body(member_id: str, setl_id: str, psn_part_amt: Decimal) -> claims.ClaimIn:
    discharge = date.today() - timedelta(days=3)
    total = Decimal("40000.00")
    return claims.ClaimIn(
        member_id=claims.MemberId(member_id), plan="inpatient",
        admission_date=discharge - timedelta(days=8), discharge_date=discharge,
        diagnosis=claims.Diagnosis(icd10="K80.2", name="胆囊结石"),
        settlement=claims.SettlementIn(setl_id=setl_id, med_type="21", medfee_sumamt=f"{total:.2f}",
                                       fund_pay_sumamt=f"{total - psn_part_amt:.2f}",
                                       psn_part_amt=f"{psn_part_amt:.2f}", fulamt_ownpay_amt="0.00"))


def approve_to_the_end(login: Any, claim: claims.ClaimOut, reviewers: dict[claims.OrgLevel, str]) -> claims.ClaimOut:
    while claim.status is claims.ClaimStatus.in_review:
        level = claim.approval.current_level
        assert level is not None
        reviewer: Api = login(reviewers[level])
        # 第十二条: the reviewer answers the claim's exclusions checklist, none applying
        decision = claims.DecisionIn(decision=claims.Decision.approve, exclusions_checklist={
            item.code: False for item in claim.exclusions_checklist or []})
        claim = claims.ClaimOut.model_validate(reviewer.post(
            "claims", f"/api/v1/claims/{claim.claim_id}/decisions", json=decision.model_dump(mode="json")))
    return claim


def run_flow(agent: Api, finance: Api, login: Any, period: str, unit: str, people: list[dict[str, Any]],
             setl_id: str, reviewers: dict[claims.OrgLevel, str], wait: Any) -> FlowResult:
    roster = submit_roster(agent, period, unit, people)
    assert roster.status is enrollment.RosterStatus.active, roster.status
    member = member_by_certno(agent, str(people[0]["certno"]))
    body = claim_body(member.member_id, setl_id, Decimal("9000.00"))

    def submit() -> claims.ClaimSubmittedOut | None:
        try:
            return claims.ClaimSubmittedOut.model_validate(agent.post(
                "claims", "/api/v1/claims", json=body.model_dump(mode="json", exclude_none=True)))
        except ApiError as e:
            if e.status == 409 and isinstance(e.body, dict) and e.body.get("code") == "member_not_yet_known":
                return None  # enrolment arrives by event within a second: the answer carries Retry-After
            raise

    submitted: claims.ClaimSubmittedOut = wait("the claims service to know the member", submit)
    assert submitted.status is claims.ClaimStatus.in_review, submitted
    assert submitted.aid_amount is not None and Decimal(submitted.aid_amount.root) > 0
    claim = claims.ClaimOut.model_validate(agent.get("claims", f"/api/v1/claims/{submitted.claim_id}"))
    assert claim.aid_amount == submitted.aid_amount
    claim = approve_to_the_end(login, claim, reviewers)
    assert claim.status is claims.ClaimStatus.approved, claim.status
    found: list[payments.InstructionOut] = wait("the payment instruction", lambda: [
        payments.InstructionOut.model_validate(i) for i in finance.get(
            "payments", "/api/v1/payment-instructions", params={"claim_id": claim.claim_id})])
    return FlowResult(roster=roster, claim=claim, instructions=found)
