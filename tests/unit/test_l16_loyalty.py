"""第十五条 (seed 003), the pure rules (services/enrollment/domain/loyalty_rules.py): one claim's aid from the claims
service's events in any order, and whether a grant is given or withdrawn from the aid of each chain period."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import permutations

import pytest

from services.enrollment.domain.loyalty_rules import (
    AID_ON_PAPER,
    ClaimAid,
    ClaimAidEvent,
    LoyaltyChange,
    aided_periods,
    claim_aid_after,
    loyalty_change,
)

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
APPROVED, ADJUSTED = ClaimAidEvent.APPROVED, ClaimAidEvent.ADJUSTED
REJECTED, REVOKED = ClaimAidEvent.REJECTED, ClaimAidEvent.REVOKED
D = Decimal

# (event, amount, minutes after T0), as the claims service produced them, in order.
Produced = list[tuple[ClaimAidEvent, Decimal | None, int]]


def replay(events: Produced) -> ClaimAid | None:
    state: ClaimAid | None = None
    for kind, amount, minutes in events:
        state = claim_aid_after(state, kind, amount, T0 + timedelta(minutes=minutes))
    return state


@pytest.mark.parametrize(("produced", "aid", "ended"), [
    ([(APPROVED, D("1260.00"), 0)], D("1260.00"), False),
    ([(APPROVED, D("0.00"), 0)], D("0.00"), False),
    # a rulebook correction raises the aid, then an earlier stay rejected late lowers it
    ([(APPROVED, D("1260.00"), 0), (ADJUSTED, D("1500.00"), 5), (ADJUSTED, D("980.00"), 9)], D("980.00"), False),
    # 第十三条: revoked for fraud after an adjustment
    ([(APPROVED, D("1260.00"), 0), (ADJUSTED, D("1500.00"), 5), (REVOKED, None, 7)], D("0.00"), True),
    # the bureau reversed the settlement: an adjustment to 0, then claim.rejected
    ([(APPROVED, D("3460.00"), 0), (ADJUSTED, D("0.00"), 3), (REJECTED, None, 3)], D("0.00"), True),
    # refused at intake: never any aid
    ([(REJECTED, None, 0)], D("0.00"), True),
], ids=["approved", "approved-zero", "two-adjustments", "revoked", "reversed", "refused-at-intake"])
def test_a_claims_aid_is_the_same_in_every_order_and_with_every_event_twice(
        produced: Produced, aid: Decimal, ended: bool) -> None:
    for order in permutations(produced):
        for twice in (list(order), [e for e in order for _ in (0, 1)]):
            state = replay(twice)
            assert state is not None and (state.aid, state.ended) == (aid, ended), twice


def test_an_adjustment_before_its_approval_keeps_the_adjusted_aid() -> None:
    state = replay([(ADJUSTED, D("700.00"), 5), (APPROVED, D("1260.00"), 0)])
    assert state == ClaimAid(D("700.00"), adjusted_at=T0 + timedelta(minutes=5))


def test_an_ended_claim_is_not_brought_back_by_a_late_approval_or_adjustment() -> None:
    state = replay([(REVOKED, None, 9), (APPROVED, D("1260.00"), 0), (ADJUSTED, D("1500.00"), 5)])
    assert state == ClaimAid(D("0.00"), ended=True)


def test_an_adjustment_needs_its_amount() -> None:
    with pytest.raises(ValueError, match="amount"):
        claim_aid_after(None, ADJUSTED, None, T0)


CHAIN = ["yn-17", "yn-16", "yn-15"]
NO_AID = {"yn-17": D("0.00"), "yn-16": D("0.00"), "yn-15": D("0.00")}
GRANT, WITHDRAW, NONE = LoyaltyChange.GRANT, LoyaltyChange.WITHDRAW, LoyaltyChange.NONE


@pytest.mark.parametrize(("aid", "granted_chain", "expected"), [
    # 第十五条: 15th-17th in a row without aid -> the 18th period's cover
    (NO_AID, None, GRANT),
    (NO_AID, CHAIN, NONE),  # granted already: once
    ({**NO_AID, "yn-16": D("500.00")}, None, NONE),
    ({**NO_AID, "yn-16": D("0.01")}, None, NONE),
    ({**NO_AID, "yn-16": D("500.00")}, CHAIN, WITHDRAW),  # a late approval in the granted chain
    ({**NO_AID, "yn-15": AID_ON_PAPER}, CHAIN, WITHDRAW),  # the paper record of the 15th says aid received
    ({**NO_AID, "yn-15": AID_ON_PAPER}, None, NONE),
    # the aid of the 16th revoked or reversed: the sum is 0.00 again, and the member qualifies
    ({**NO_AID, "yn-16": D("0.00")}, None, GRANT),
    ({"yn-17": D("0.00"), "yn-16": D("0.00")}, None, NONE),  # not covered in the 15th
    ({**NO_AID, "yn-14": D("800.00")}, None, GRANT),  # aid outside the chain counts for nothing
], ids=["qualifies", "granted-once", "aid-in-16", "one-cent", "late-approval-withdraws", "paper-aid-withdraws",
        "paper-aid", "aid-gone", "missed-a-period", "aid-outside-chain"])
def test_grant_or_withdraw_from_the_aid_of_each_period(
        aid: dict[str, Decimal | None], granted_chain: list[str] | None, expected: LoyaltyChange) -> None:
    assert loyalty_change(CHAIN, 3, aid, granted_chain=granted_chain) is expected


def test_a_chain_shorter_than_the_rule_grants_nothing() -> None:
    assert loyalty_change(CHAIN[:2], 3, NO_AID, granted_chain=None) is NONE


def test_a_grant_is_withdrawn_on_its_own_chain_even_if_the_period_now_names_another() -> None:
    assert loyalty_change(["yn-17b", "yn-16", "yn-15"], 3, {**NO_AID, "yn-17": D("300.00")},
                          granted_chain=CHAIN) is WITHDRAW


def test_the_aided_periods_are_named_in_chain_order() -> None:
    aid = {**NO_AID, "yn-15": AID_ON_PAPER, "yn-17": D("120.00")}
    assert aided_periods(CHAIN, aid) == ["yn-17", "yn-15"]
