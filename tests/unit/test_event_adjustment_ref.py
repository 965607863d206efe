"""Payment events name a top-up's adjustment, or None for the claim's own aid (issue #10: `str | None`, not "")."""

from __future__ import annotations

from decimal import Decimal

import pytest

from shared.events import PaymentFailed, PaymentInstructionCreated, PaymentSettled


@pytest.mark.parametrize("sent, read", [("", None), (None, None), ("adj-7f3a", "adj-7f3a")])
def test_an_older_producers_empty_adjustment_reads_as_none(sent: str | None, read: str | None) -> None:
    created = PaymentInstructionCreated(instruction_id="I1", claim_id="C1", member_id="M1", attempt=1,
                                        amount=Decimal("1260.00"), adjustment_id=sent)
    settled = PaymentSettled(instruction_id="I1", claim_id="C1", member_id="M1", amount=Decimal("1260.00"),
                             adjustment_id=sent, attempt=1)
    failed = PaymentFailed(instruction_id="I1", claim_id="C1", member_id="M1", reason="账户已销户",
                           adjustment_id=sent, attempt=1)
    for event in (created, settled, failed):
        assert event.adjustment_id == read
        # on the wire the claim's own aid stays "": a consumer of the previous release must read it (rolling deploy)
        assert event.model_dump(mode="json")["adjustment_id"] == (read or "")
        assert type(event).model_validate_json(event.model_dump_json()).adjustment_id == read


def test_the_own_aid_is_the_default() -> None:
    assert PaymentSettled(instruction_id="I1", claim_id="C1", member_id="M1",
                          amount=Decimal("1.00")).adjustment_id is None
