"""The fund ledger (issue 5 §4): every entry balances, so postings sum to zero after any sequence of fees,
approvals, top-ups, payments, failures, retries, reductions, revocations and recoveries; and the statement
tells finance what the fund owes, holds and is owed."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.payments import ledger

ZERO = Decimal("0.00")


def fen(n: int) -> Decimal:
    return Decimal(n) / 100


@dataclass
class Fund:
    """A miniature of the service: claims with an unpaid or paid amount, and the entries it would post."""

    entries: list[ledger.JournalEntry] = field(default_factory=list)
    unpaid: dict[int, Decimal] = field(default_factory=dict)  # claim -> payable (pending, batched or failed)
    paid: dict[int, Decimal] = field(default_factory=dict)
    revoked: set[int] = field(default_factory=set)
    due: Decimal = ZERO
    fees: Decimal = ZERO
    paid_total: Decimal = ZERO
    recovered: Decimal = ZERO

    def post(self, entry: ledger.JournalEntry) -> None:
        self.entries.append(entry)

    def apply(self, op: tuple[str, int, int]) -> None:
        kind, claim, cents = op
        amount = fen(cents)
        if kind == "fees":
            self.post(ledger.fees_received(amount))
            self.fees += amount
        elif kind in ("approve", "top_up") and claim not in self.revoked:
            self.post(ledger.aid_approved(amount))
            self.unpaid[claim] = self.unpaid.get(claim, ZERO) + amount
        elif kind == "pay" and claim in self.unpaid:
            owed = self.unpaid.pop(claim)
            self.post(ledger.aid_paid(owed))
            self.paid_total += owed
            self.paid[claim] = self.paid.get(claim, ZERO) + owed
            if claim in self.revoked:  # a file the bank had when the claim was revoked
                self.post(ledger.recovery_due(owed))
                self.due += owed
        elif kind in ("fail", "retry"):
            pass  # a failed transfer and its retry post nothing: the aid stays payable
        elif kind == "reduce" and claim in self.unpaid and claim not in self.revoked:
            cut = min(amount, self.unpaid[claim])
            self.post(ledger.approval_cancelled(cut))
            self.unpaid[claim] -= cut
            if self.unpaid[claim] == 0:
                del self.unpaid[claim]
        elif kind == "reduce" and claim in self.paid and claim not in self.revoked:
            self.post(ledger.recovery_due(amount))
            self.due += amount
        elif kind == "revoke" and claim not in self.revoked:
            self.revoked.add(claim)
            if claim in self.unpaid and cents % 2:  # odd: still cancellable; even: the bank has the file
                self.post(ledger.approval_cancelled(self.unpaid.pop(claim)))
            if self.paid.get(claim, ZERO) > 0:
                self.post(ledger.recovery_due(self.paid[claim]))
                self.due += self.paid[claim]
        elif kind == "recover" and self.due > 0:
            back = min(amount, self.due)
            self.post(ledger.recovery_received(back))
            self.due -= back
            self.recovered += back


KINDS = ("fees", "approve", "top_up", "pay", "fail", "retry", "reduce", "revoke", "recover")
operations = st.lists(st.tuples(st.sampled_from(KINDS), st.integers(0, 6), st.integers(1, 50_000_000)),
                      max_size=60)


@settings(max_examples=300, deadline=None)
@given(operations)
def test_postings_sum_to_zero_after_any_sequence_and_the_statement_agrees(ops: list[tuple[str, int, int]]) -> None:
    fund = Fund()
    for op in ops:
        fund.apply(op)
    postings = [(e.kind, p.account, p.amount) for e in fund.entries for p in e.postings]
    assert sum((amount for _, _, amount in postings), ZERO) == ZERO
    s = ledger.statement(postings)
    assert s.postings_sum == ZERO
    assert s.fees_received == fund.fees
    assert s.aid_paid == fund.paid_total
    assert s.aid_approved_unpaid == sum(fund.unpaid.values(), ZERO)
    assert s.recoveries_due == fund.due and s.recovered == fund.recovered
    assert s.balance == fund.fees - fund.paid_total + fund.recovered
    assert s.aid_approved == s.aid_paid + s.aid_approved_unpaid  # every approved fen is paid or still owed


@given(st.sampled_from([ledger.fees_received, ledger.aid_approved, ledger.aid_paid, ledger.approval_cancelled,
                        ledger.recovery_due, ledger.recovery_received]), st.integers(1, 10**12))
def test_every_entry_balances_and_moves_exactly_its_amount(make: object, cents: int) -> None:
    entry = make(fen(cents))  # type: ignore[operator]
    assert sum(p.amount for p in entry.postings) == ZERO
    assert sorted(p.amount for p in entry.postings) == [-fen(cents), fen(cents)]


def test_an_unbalanced_entry_or_an_amount_finer_than_a_fen_is_refused() -> None:
    with pytest.raises(ledger.Unbalanced):
        ledger.JournalEntry("x", (ledger.Posting(ledger.BANK, Decimal("1.00")),))
    with pytest.raises(ValueError):
        ledger.aid_paid(Decimal("1.005"))
    with pytest.raises(ValueError):
        ledger.aid_paid(Decimal("0.00"))
