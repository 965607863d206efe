"""The approval state machine (services/claims/domain/approval.py) as tables straight from seed 003:

第十条 互助金的审批办理权限。补助金额在 3 000 元以内 (含 3 000 元) 的，由各代办点审核；3 000 元以上 (不含 3 000 元)
至 10 000 元以下 (含 10 000 元) 的，由办事处审核；10 000 元以上 (不含 10 000 元) 的，由云南省职工医疗互助中心审核。
对审批权限内资料齐全的补助申请，应在 5 个工作日内办结。
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from services.claims.domain.approval import ClaimState, Decision, day_of, decide, level_due, submitted
from services.claims.domain.intake import CoverageFacts, IntakeFacts, Refusal, RulebookMissing, screen
from services.claims.domain.routing import review_path
from services.claims.domain.workdays import WorkCalendar, add_working_days
from shared.auth import Principal
from shared.errors import Conflict, Forbidden, Invalid
from shared.events import ClaimApproved, ClaimRejected, ClaimReturned, ClaimRevoked, ClaimSubmitted
from shared.rulebook import RULEBOOKS_DIR, load_rulebook
from shared.vocab import ClaimStatus

YUNNAN = load_rulebook((RULEBOOKS_DIR / "yunnan-18.yaml").read_text(encoding="utf-8"))
# A week with no holiday: Monday 2099-06-01 (calendar known for 2099, no exceptions).
CALENDAR = WorkCalendar(years=frozenset({2099}))
NOW = datetime(2099, 6, 1, 9, 30, tzinfo=UTC)

PATH = [("agency_point", "A1", ("C", "O", "A1")), ("office", "O", ("C", "O")), ("centre", "C", ("C",))]
ROLE = {"agency_point": "agency_reviewer", "office": "office_reviewer", "centre": "centre_reviewer"}


def reviewer(level: str, user_id: str | None = None) -> Principal:
    org, path = {lv: (org, p) for lv, org, p in PATH}[level]
    return Principal(user_id=user_id or f"u-{level}", username=f"{level}-reviewer", role=ROLE[level], org=org,
                     org_level=level, org_path=path)


UNIT_AGENT = Principal(user_id="u-unit", username="unit", role="unit_agent", org="U1", org_level="unit",
                       org_path=("C", "O", "A1", "U1"))


def new_claim(aid: str) -> ClaimState:
    state = ClaimState(claim_id="c-1", member_id="m-1", period="yunnan-18", plan="inpatient",
                       status=ClaimStatus.SUBMITTED, aid_amount=Decimal(aid), rulebook_code=YUNNAN.code,
                       review_path=tuple(review_path(YUNNAN.approval, Decimal(aid))),
                       sla_working_days=YUNNAN.approval.sla_working_days)
    return submitted(state, None, NOW, CALENDAR).state


# 第十条, tier by tier: (aid, the levels it passes, the one whose approval is final).
TIERS = [
    ("0.00", ["agency_point"]),
    ("100.00", ["agency_point"]),
    ("3000.00", ["agency_point"]),  # 含 3 000 元
    ("3000.01", ["agency_point", "office"]),  # 3 000 元以上 (不含 3 000 元)
    ("10000.00", ["agency_point", "office"]),  # 含 10 000 元
    ("10000.01", ["agency_point", "office", "centre"]),  # 10 000 元以上 (不含 10 000 元)
    ("85000.00", ["agency_point", "office", "centre"]),
]


@pytest.mark.parametrize(("aid", "levels"), TIERS)
def test_each_level_approves_in_turn_and_the_last_is_final(aid: str, levels: list[str]) -> None:
    state = new_claim(aid)
    assert (state.status, state.current_level, state.final_level) == (ClaimStatus.IN_REVIEW, levels[0], levels[-1])
    for index, level in enumerate(levels):
        t = decide(state, reviewer(level), Decision("approve"), NOW, CALENDAR)
        state = replace(t.state, deciders=state.deciders | {f"u-{level}"})
        assert t.step.level == level and t.step.decision == "approve"
        if index + 1 < len(levels):
            assert (state.status, state.current_level) == (ClaimStatus.IN_REVIEW, levels[index + 1])
            assert t.events == ()
        else:
            assert (state.status, state.current_level, state.due_date) == (ClaimStatus.APPROVED, None, None)
            assert [type(e) for e in t.events] == [ClaimApproved]
            assert t.events[0].aid_amount == Decimal(aid)  # type: ignore[attr-defined]


# Who may decide a claim waiting at the office (aid 5,000: agency point reviewed, office final).
WHO = [
    ("agency_point", Forbidden, "not_your_level"),  # its review is done; the claim has moved up
    ("centre", Forbidden, "not_your_level"),  # the centre does not decide what is within the office's authority
    ("office", None, None),
]


@pytest.mark.parametrize(("level", "error", "code"), WHO)
def test_only_the_level_holding_the_claim_decides(level: str, error: type[Exception] | None, code: str | None
                                                  ) -> None:
    state = decide(new_claim("5000.00"), reviewer("agency_point"), Decision("approve"), NOW, CALENDAR).state
    state = replace(state, deciders=frozenset({"u-agency_point"}))
    if error is None:
        assert decide(state, reviewer(level), Decision("approve"), NOW, CALENDAR).state.status == ClaimStatus.APPROVED
        return
    with pytest.raises(error) as exc:
        decide(state, reviewer(level), Decision("approve"), NOW, CALENDAR)
    assert exc.value.code == code  # type: ignore[attr-defined]


def test_the_same_person_never_decides_two_levels() -> None:
    state = decide(new_claim("5000.00"), reviewer("agency_point", "same"), Decision("approve"), NOW, CALENDAR).state
    state = replace(state, deciders=frozenset({"same"}))
    with pytest.raises(Forbidden) as exc:
        decide(state, reviewer("office", "same"), Decision("approve"), NOW, CALENDAR)
    assert exc.value.code == "same_person_twice"


# (decision, reason, status after, event, clock)
OUTCOMES = [
    ("approve", None, ClaimStatus.APPROVED, ClaimApproved, "stopped"),
    ("reject", "非住院费用", ClaimStatus.REJECTED, ClaimRejected, "stopped"),
    ("return", "缺出院小结", ClaimStatus.RETURNED, ClaimReturned, "stopped"),
]


@pytest.mark.parametrize(("kind", "reason", "status", "event", "clock"), OUTCOMES)
def test_decisions_at_the_final_level(kind: str, reason: str | None, status: ClaimStatus, event: type,
                                      clock: str) -> None:
    t = decide(new_claim("2000.00"), reviewer("agency_point"), Decision(kind, reason), NOW, CALENDAR)  # type: ignore[arg-type]
    assert t.state.status == status
    assert [type(e) for e in t.events] == [event]
    assert t.state.due_date is None
    assert t.reassess_cause == ("late_rejection" if kind == "reject" else None)
    if kind == "reject":
        assert t.rejection == Refusal("rejected_by_reviewer", reason or "")
    if kind == "return":
        assert t.state.returned_level == "agency_point"


@pytest.mark.parametrize("kind", ["reject", "return"])
@pytest.mark.parametrize("reason", [None, "", "   "])
def test_reject_and_return_must_say_why(kind: str, reason: str | None) -> None:
    with pytest.raises(Invalid) as exc:
        decide(new_claim("2000.00"), reviewer("agency_point"), Decision(kind, reason), NOW, CALENDAR)  # type: ignore[arg-type]
    assert exc.value.code == "reason_required"


def test_five_working_days_at_each_level_and_afresh_after_a_return() -> None:
    """对审批权限内资料齐全的补助申请，应在 5 个工作日内办结: each level's clock starts when the claim reaches it;
    a return stops it, the resubmission restarts it in full at the level that returned it."""
    state = new_claim("5000.00")
    assert state.due_date == date(2099, 6, 8)  # Monday + 5 working days (the day itself does not count)
    wednesday = NOW + timedelta(days=2)
    state = decide(state, reviewer("agency_point"), Decision("approve"), wednesday, CALENDAR).state
    assert (state.current_level, state.due_date) == ("office", date(2099, 6, 10))
    returned = decide(state, reviewer("office"), Decision("return", "缺发票"), wednesday, CALENDAR).state
    assert (returned.status, returned.due_date) == (ClaimStatus.RETURNED, None)
    with pytest.raises(Conflict):
        decide(state, UNIT_AGENT, Decision("resubmit"), wednesday, CALENDAR)  # in review: nothing to resubmit
    friday = NOW + timedelta(days=4)
    t = decide(returned, UNIT_AGENT, Decision("resubmit", "补齐"), friday, CALENDAR)
    assert (t.state.status, t.state.current_level, t.state.returned_level) == (ClaimStatus.IN_REVIEW, "office", None)
    assert t.state.due_date == date(2099, 6, 12) and t.state.level_entered_at == friday
    assert t.events == () and t.step.decision == "resubmit"


def test_one_due_date_function_counts_from_the_instant_the_level_was_reached() -> None:
    """Intake, decisions and the calendar's recomputation all count from level_entered_at through level_due:
    the same instant read in any zone gives the same due date (the old code took date.today() at intake and
    the UTC date of level_entered_at when recomputing: a day apart around midnight)."""
    instant = datetime(2099, 6, 1, 23, 30, tzinfo=UTC)
    elsewhere = instant.astimezone(timezone(timedelta(hours=8)))  # already 2 June in Beijing
    assert level_due(instant, 5, CALENDAR) == level_due(elsewhere, 5, CALENDAR)
    assert level_due(instant, 5, CALENDAR) == add_working_days(day_of(instant), 5, CALENDAR)
    state = submitted(replace(new_claim("10.00"), status=ClaimStatus.SUBMITTED), None, instant, CALENDAR).state
    assert state.due_date == level_due(instant, 5, CALENDAR).due


# 第十三条: revocation, from every state.
REVOCABLE = [(s, s not in (ClaimStatus.REJECTED, ClaimStatus.REVOKED)) for s in ClaimStatus]


@pytest.mark.parametrize(("status", "revocable"), REVOCABLE)
def test_fraud_revokes_any_claim_not_already_ended(status: ClaimStatus, revocable: bool) -> None:
    state = replace(new_claim("2000.00"), status=status)
    if not revocable:
        with pytest.raises(Conflict):
            decide(state, reviewer("centre"), Decision("revoke", "伪造票据"), NOW, CALENDAR)
        return
    t = decide(state, reviewer("centre"), Decision("revoke", "伪造票据"), NOW, CALENDAR)
    assert (t.state.status, t.state.current_level, t.revoke_right) == (ClaimStatus.REVOKED, None, True)
    assert [type(e) for e in t.events] == [ClaimRevoked] and t.reassess_cause == "revoked_for_fraud"


@pytest.mark.parametrize("status", [s for s in ClaimStatus if s != ClaimStatus.IN_REVIEW])
def test_no_reviewer_decides_a_claim_not_in_review(status: ClaimStatus) -> None:
    with pytest.raises(Forbidden):
        decide(replace(new_claim("100.00"), status=status), reviewer("agency_point"), Decision("approve"), NOW,
               CALENDAR)


def test_a_refusal_at_intake_is_a_rejected_claim_with_its_events() -> None:
    state = ClaimState(claim_id="c-2", member_id="m-2", period=None, plan="inpatient", status=ClaimStatus.SUBMITTED)
    t = submitted(state, Refusal("not_covered", "未参互"), NOW, None)
    assert t.state.status == ClaimStatus.REJECTED and t.rejection == Refusal("not_covered", "未参互")
    assert [type(e) for e in t.events] == [ClaimSubmitted, ClaimRejected]


# --- intake: 第三/十一/十二/十三条 ---------------------------------------------------------------------------
WINDOW = YUNNAN.windows.claims
IN_WINDOW = WINDOW.from_ + timedelta(days=10)
COVERED = CoverageFacts("yunnan-18", ("inpatient",), None)
BASE = IntakeFacts(plan="inpatient", discharge_date=date(2022, 5, 1), med_type="21", coverage=COVERED)

SCREEN = [
    ("covered, in window", BASE, IN_WINDOW, None),
    ("第三条 no coverage on the discharge date", replace(BASE, coverage=None), IN_WINDOW, "not_covered"),
    ("left before the discharge", replace(BASE, coverage=replace(COVERED, ended_on=date(2022, 4, 1))), IN_WINDOW,
     "coverage_ended"),
    ("plan not joined", replace(BASE, plan="second_aid"), IN_WINDOW, "plan_not_joined"),
    ("第十三条 right revoked", replace(BASE, right_revoked=True), IN_WINDOW, "revoked_for_fraud"),
    ("第十一条 before the window", BASE, WINDOW.from_ - timedelta(days=1), "claim_window_closed"),
    ("第十一条 after the window", BASE, WINDOW.to + timedelta(days=1), "claim_window_closed"),
    ("第十一条 last day", BASE, WINDOW.to, None),
    ("settlement claimed already", replace(BASE, settlement_claimed=True), IN_WINDOW, "duplicate_settlement"),
    ("settlement reversed", replace(BASE, settlement_reversed=True), IN_WINDOW, "settlement_reversed"),
]


@pytest.mark.parametrize(("case", "facts", "today", "code"), SCREEN, ids=[c[0] for c in SCREEN])
def test_screen(case: str, facts: IntakeFacts, today: date, code: str | None) -> None:
    refusal = screen(facts, YUNNAN, today)
    assert (refusal.code if refusal else None) == code


def test_outpatient_care_is_excluded_where_the_plan_names_its_kinds() -> None:
    med_types = getattr(YUNNAN.plan("inpatient"), "med_types", None)
    assert med_types, "yunnan-18's inpatient plan names the covered kinds of care (第十二条)"
    refusal = screen(replace(BASE, med_type="11"), YUNNAN, IN_WINDOW)  # 11: 普通门诊
    assert refusal is not None and refusal.code == "excluded_outpatient" and "第十二条第四款" in refusal.detail


def test_maternity_is_excluded_as_not_paid_by_basic_insurance() -> None:
    assert "not_paid_by_basic_insurance" in YUNNAN.exclusions
    refusal = screen(replace(BASE, med_type="52"), YUNNAN, IN_WINDOW)  # 52: 生育住院
    assert refusal is not None and refusal.code == "excluded_maternity" and "第十二条第三款" in refusal.detail


def test_a_kind_of_care_neither_excluded_nor_named_by_the_plan_is_not_covered() -> None:
    # 99: 其他 (28 日间手术 is an admission, 第六条 住院: the plan names it; tests/unit/test_c16_exclusion_rules.py)
    refusal = screen(replace(BASE, med_type="99"), YUNNAN, IN_WINDOW)
    assert refusal is not None and refusal.code == "med_type_not_covered"


def test_an_exclusion_the_rulebook_does_not_list_is_left_to_the_plan() -> None:
    without = YUNNAN.model_copy(update={"exclusions": [e for e in YUNNAN.exclusions if e != "outpatient"]})
    refusal = screen(replace(BASE, med_type="11"), without, IN_WINDOW)
    assert refusal is not None and refusal.code == "med_type_not_covered"


def test_a_coverage_whose_rulebook_has_not_arrived_is_a_wait() -> None:
    with pytest.raises(RulebookMissing):
        screen(BASE, None, IN_WINDOW)
    assert screen(replace(BASE, coverage=None), None, IN_WINDOW) == Refusal(
        "not_covered", "出院日期不在该人员的参互有效期内，或其未参互。")
