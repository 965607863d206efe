"""Roster fees as the bank dated them (seed 003 第五条 "参互人员必须在规定时限内交费，逾期不再办理"): pure, no I/O.

A payment counts by its bank date (``paid_at``), not by the day someone records it: a payment dated within the
enrolment window is accepted even when it is recorded later (the centre entering paper records received on
time), one dated after the window is refused for everyone, admin included, so a late-entered roster cannot buy
cover with a late payment. A date in the future, before the window opened or before 1900 is a typing error.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from shared.rulebook import Rulebook

EARLIEST = date(1900, 1, 1)


@dataclass(frozen=True)
class PaymentDateProblem:
    code: str
    msg: str


def payment_date_problem(rulebook: Rulebook, paid_at: date, *, today: date) -> PaymentDateProblem | None:
    """Why a roster payment with this bank date is refused, or None when it may count."""
    window = rulebook.windows.enrolment
    if paid_at > today:
        return PaymentDateProblem("payment_date_in_future", f"付款日期 {paid_at} 晚于今天（{today}），请填写银行回单上的日期。")
    if paid_at < EARLIEST:
        return PaymentDateProblem("payment_date_invalid", f"付款日期 {paid_at} 不合理，请填写银行回单上的日期。")
    if paid_at < window.from_:
        return PaymentDateProblem("payment_before_window", f"付款日期 {paid_at} 早于本期交费时限的开始日 {window.from_}"
                                  "（第五条），请核对银行回单上的日期。")
    if paid_at > window.to:
        return PaymentDateProblem("payment_window_closed", f"付款日期 {paid_at} 已超过本期交费时限（{window.from_} 至 "
                                  f"{window.to}），按第五条“逾期不再办理”，此款不能用于参互。")
    return None


def cover_start(rulebook: Rulebook, paid_at: date) -> date:
    """The first day of a roster's cover, the fees completed by a payment of bank date ``paid_at`` (the rulebook's
    ``enrolment.cover_starts``; by default the first day of the coverage window, seed 003 第三条)."""
    first = rulebook.windows.coverage.from_
    mode = rulebook.enrolment.cover_starts
    if mode == "payment_date":
        return max(first, paid_at)
    if mode == "day_after_payment":
        return max(first, paid_at + timedelta(days=1))
    return first
