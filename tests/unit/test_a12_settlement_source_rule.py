"""The rulebook's settlement_source (seed 003 第九条 "凭医保部门提供的住院结算数据"; seed 001: Yuncheng's uninsured
workers claim on hospital receipts) and auto_claim keys, and the pure approval rule that reads them."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from services.claims.domain.approval import ClaimState, Decision, decide, settlement_hold, settlement_warning
from shared.auth import Principal
from shared.errors import Conflict
from shared.rulebook import BandedPlan, RulebookError, load_rulebook, parse_rulebook
from shared.vocab import ClaimStatus
from tests.conftest import RULEBOOKS

NOW = datetime(2026, 12, 7, 9, 30, tzinfo=UTC)

# source x check status -> may the final level approve? warning shown to the reviewer?
TABLE = [
    ("bureau_required", "unverified", False, True),
    ("bureau_required", "verified", True, False),
    ("bureau_required", "mismatch", True, False),
    ("bureau_required", None, True, False),  # a claim from before the check was kept
    ("bureau_preferred", "unverified", True, True),
    ("bureau_preferred", "verified", True, False),
    ("bureau_preferred", "mismatch", True, False),
    ("paper_allowed", "unverified", True, False),
    ("paper_allowed", "verified", True, False),
]


@pytest.mark.parametrize(("source", "status", "approvable", "warned"), TABLE)
def test_settlement_source_decides_final_approval_of_an_unverified_claim(
        source: str, status: str | None, approvable: bool, warned: bool) -> None:
    assert (settlement_hold(source, status) is None) is approvable
    assert (settlement_warning(source, status) is not None) is warned
    state = ClaimState(claim_id="c1", member_id="M1", period="yn-18", plan="inpatient",
                       status=ClaimStatus.IN_REVIEW, aid_amount=Decimal("1260.00"), review_path=("agency_point",),
                       current_level="agency_point", final_level="agency_point", settlement_status=status,
                       settlement_source=source)
    reviewer = Principal(user_id="u-lan", username="兰蕊", role="agency_reviewer", org="A530102",
                         org_level="agency_point", org_path=("C53", "O5301", "A530102"))
    if approvable:
        assert decide(state, reviewer, Decision("approve"), NOW).state.status == ClaimStatus.APPROVED
    else:
        with pytest.raises(Conflict) as refused:
            decide(state, reviewer, Decision("approve"), NOW)
        assert refused.value.code == "settlement_unverified" and "第九条" in refused.value.detail


@pytest.mark.parametrize("source", ["bureau_required", "bureau_preferred", "paper_allowed"])
def test_a_claim_whose_bureau_record_is_another_persons_is_never_approved(source: str) -> None:
    state = ClaimState(claim_id="c3", member_id="M3", period="yn-18", plan="inpatient",
                       status=ClaimStatus.IN_REVIEW, aid_amount=Decimal("1260.00"), review_path=("agency_point",),
                       current_level="agency_point", final_level="agency_point", settlement_status="mismatch",
                       settlement_source=source, settlement_of_another=True)
    reviewer = Principal(user_id="u-qin", username="覃昱", role="agency_reviewer", org="A530102",
                         org_level="agency_point", org_path=("C53", "O5301", "A530102"))
    with pytest.raises(Conflict) as refused:
        decide(state, reviewer, Decision("approve"), NOW)
    assert refused.value.code == "settlement_of_another_person"
    assert decide(state, reviewer, Decision("reject", "结算单属于他人"), NOW).state.status == ClaimStatus.REJECTED


def test_a_lower_level_passes_an_unverified_claim_up_even_when_the_bureau_is_required() -> None:
    state = ClaimState(claim_id="c2", member_id="M2", period="yn-18", plan="inpatient",
                       status=ClaimStatus.IN_REVIEW, aid_amount=Decimal("3460.00"),
                       review_path=("agency_point", "office"), current_level="agency_point", final_level="office",
                       settlement_status="unverified", settlement_source="bureau_required")
    reviewer = Principal(user_id="u-zhao", username="赵珺", role="agency_reviewer", org="A530102",
                         org_level="agency_point", org_path=("C53", "O5301", "A530102"))
    assert decide(state, reviewer, Decision("approve"), NOW).state.current_level == "office"


def plans_of(name: str) -> dict[str, BandedPlan]:
    rulebook = load_rulebook((RULEBOOKS / f"{name}.yaml").read_text(encoding="utf-8"))
    return {p.code: p for p in rulebook.plans if isinstance(p, BandedPlan)}


def test_the_project_rulebooks_say_where_the_settlement_comes_from() -> None:
    assert plans_of("yunnan-18")["inpatient"].settlement_source == "bureau_preferred"  # seed 003 第九条
    assert plans_of("yunnan-19")["inpatient"].settlement_source == "bureau_preferred"
    assert plans_of("yuncheng-2024")["inpatient"].settlement_source == "paper_allowed"  # seed 001 收据
    assert plans_of("neimenggu-2019")["inpatient"].settlement_source == "paper_allowed"  # the default
    assert not any(p.auto_claim for name in ("yunnan-18", "yunnan-19", "yuncheng-2024", "beijing-2014")
                   for p in plans_of(name).values())


def test_a_wrong_settlement_source_or_auto_claim_is_named_by_the_loader() -> None:
    doc = load_rulebook((RULEBOOKS / "yunnan-18.yaml").read_text(encoding="utf-8")).to_document()
    doc["plans"][0]["settlement_source"] = "bureau_only"
    with pytest.raises(RulebookError) as bad:
        parse_rulebook(doc)
    assert any(e["loc"][-1] == "settlement_source" for e in bad.value.errors)
    doc["plans"][0]["settlement_source"] = "bureau_required"
    doc["plans"][0]["auto_claim"] = "yes"
    with pytest.raises(RulebookError) as bad:
        parse_rulebook(doc)
    assert any(e["loc"][-1] == "auto_claim" for e in bad.value.errors)
    doc["plans"][0]["auto_claim"] = True
    plan = parse_rulebook(doc).plans[0]
    assert isinstance(plan, BandedPlan) and plan.auto_claim and plan.settlement_source == "bureau_required"
    assert parse_rulebook(parse_rulebook(doc).to_document()) == parse_rulebook(doc)
