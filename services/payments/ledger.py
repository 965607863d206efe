"""The fund's double-entry ledger, pure: which accounts each business fact moves, and the period statement.

No database, no I/O (docs/ARCHITECTURE.md "Shape": a pure core). Amounts are Decimal fen; a posting is a debit (> 0) or a credit
(< 0) to one account, and every journal entry sums to zero, so the whole ledger always does (issue 5 §4,
docs/ARCHITECTURE.md "Invariants a checker can run": fund ledger postings sum to zero).

The chart of accounts, one per figure finance and the auditor ask for (docs/DOMAIN.md "Figures people ask for"):

| account | kind | moved by |
|---|---|---|
| ``bank`` | asset: the fund's account at its bank | fees in, aid out, recoveries in |
| ``fees_received`` | income | roster.fees_received (第四条: fees are never refunded) |
| ``aid_expense`` | expense: aid approved | claim.approved / a top-up; reversed when an unpaid one is cancelled |
| ``aid_payable`` | liability: aid approved and not yet paid | approved (credit), paid or cancelled (debit) |
| ``recoveries_receivable`` | asset: aid to be asked back | a revocation or a downward adjustment (debit), money back (credit) |
| ``aid_recovered`` | contra-expense | the other side of a recovery becoming due |

A failed transfer posts nothing: the aid stays payable until a retry pays it (or a revocation cancels it).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from shared.money import to_fen

BANK = "bank"
FEES_RECEIVED = "fees_received"
AID_EXPENSE = "aid_expense"
AID_PAYABLE = "aid_payable"
RECOVERIES_RECEIVABLE = "recoveries_receivable"
AID_RECOVERED = "aid_recovered"
ACCOUNTS = (BANK, FEES_RECEIVED, AID_EXPENSE, AID_PAYABLE, RECOVERIES_RECEIVABLE, AID_RECOVERED)
ZERO = Decimal("0.00")


class Unbalanced(ValueError):
    """A journal entry whose postings do not sum to zero: a bug, never stored."""


@dataclass(frozen=True)
class Posting:
    account: str
    amount: Decimal  # debit > 0, credit < 0


@dataclass(frozen=True)
class JournalEntry:
    kind: str
    postings: tuple[Posting, ...]

    def __post_init__(self) -> None:
        if sum((p.amount for p in self.postings), ZERO) != ZERO:
            raise Unbalanced(f"{self.kind}: postings sum to {sum(p.amount for p in self.postings)}")
        for p in self.postings:
            if p.account not in ACCOUNTS:
                raise ValueError(f"unknown account {p.account!r}")


def _fen(amount: Decimal) -> Decimal:
    # Amounts arrive already in fen (events carry two-place decimals); anything finer is a bug upstream,
    # not something to round silently here (shared.money.to_fen is the only rounding, and it is not ours).
    if to_fen(amount) != amount:
        raise ValueError(f"amount finer than a fen: {amount}")
    if amount <= 0:
        raise ValueError(f"a journal entry moves a positive amount, got {amount}")
    return amount


def _transfer(kind: str, debit: str, credit: str, amount: Decimal) -> JournalEntry:
    a = _fen(amount)
    return JournalEntry(kind, (Posting(debit, a), Posting(credit, -a)))


def fees_received(amount: Decimal) -> JournalEntry:
    """A unit's fees reached the fund (roster.fees_received)."""
    return _transfer("fees_received", BANK, FEES_RECEIVED, amount)


def aid_approved(amount: Decimal) -> JournalEntry:
    """A claim's aid (or a top-up) was approved: the fund owes it to the member."""
    return _transfer("aid_approved", AID_EXPENSE, AID_PAYABLE, amount)


def aid_paid(amount: Decimal) -> JournalEntry:
    """The bank reported the transfer paid."""
    return _transfer("aid_paid", AID_PAYABLE, BANK, amount)


def approval_cancelled(amount: Decimal) -> JournalEntry:
    """Approved aid that will never be paid (revoked before payment): the approval is reversed."""
    return _transfer("approval_cancelled", AID_PAYABLE, AID_EXPENSE, amount)


def recovery_due(amount: Decimal) -> JournalEntry:
    """Aid paid that must come back (fraud, 除外责任: "claws back aid already paid"; or a downward adjustment)."""
    return _transfer("recovery_due", RECOVERIES_RECEIVABLE, AID_RECOVERED, amount)


def recovery_received(amount: Decimal) -> JournalEntry:
    """Recovered aid reached the fund's account."""
    return _transfer("recovery_received", BANK, RECOVERIES_RECEIVABLE, amount)


@dataclass(frozen=True)
class Statement:
    fees_received: Decimal
    aid_approved: Decimal  # net of cancellations
    aid_paid: Decimal
    aid_approved_unpaid: Decimal
    recoveries_due: Decimal  # outstanding: due and not yet recovered
    recovered: Decimal
    balance: Decimal  # the period's money at the bank: fees - aid paid + recovered
    postings_sum: Decimal
    accounts: dict[str, Decimal]


def statement(postings: Iterable[tuple[str, str, Decimal]]) -> Statement:
    """The period statement from its postings as (entry kind, account, amount)."""
    balances: dict[str, Decimal] = defaultdict(lambda: ZERO)
    by_kind: dict[tuple[str, str], Decimal] = defaultdict(lambda: ZERO)
    total = ZERO
    for kind, account, amount in postings:
        balances[account] += amount
        by_kind[(kind, account)] += amount
        total += amount
    return Statement(
        fees_received=-balances[FEES_RECEIVED],
        aid_approved=balances[AID_EXPENSE],
        aid_paid=-by_kind[("aid_paid", BANK)],
        aid_approved_unpaid=-balances[AID_PAYABLE],
        recoveries_due=balances[RECOVERIES_RECEIVABLE],
        recovered=by_kind[("recovery_received", BANK)],
        balance=balances[BANK],
        postings_sum=total,
        accounts={account: balances[account] for account in ACCOUNTS},
    )
