"""The hold on payments to a just-changed account (issue #9): pure, no database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.payments.instructions import hold_reason
from services.payments.models import Payee

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
WEEK = timedelta(days=7)


def payee(changed: datetime | None) -> Payee:
    return Payee(member_id="M1", name="张伟", bank_account="6217000000000000001", bank_name="中国建设银行",
                 unit_path="/YN/YN-KM/YN-KM-WH/YN-KM-WH-001", account_changed_at=changed)


def test_an_account_never_changed_or_unknown_holds_nothing() -> None:
    assert hold_reason(None, WEEK, NOW) is None
    assert hold_reason(payee(None), WEEK, NOW) is None


def test_an_account_changed_within_the_setting_holds_and_says_when() -> None:
    reason = hold_reason(payee(NOW - timedelta(days=6, hours=23)), WEEK, NOW)
    assert reason is not None and "2026-11-16" in reason and "7 天" in reason


def test_the_hold_ends_exactly_the_setting_after_the_change() -> None:
    assert hold_reason(payee(NOW - WEEK), WEEK, NOW) is None
    assert hold_reason(payee(NOW - WEEK + timedelta(seconds=1)), WEEK, NOW) is not None
    assert hold_reason(payee(NOW - timedelta(seconds=1)), timedelta(0), NOW) is None  # a setting of 0: no hold
