"""A delivery's last error as the feeds show it (issue #13 item 5, "no ID number or account in any message"): an
SMTP refusal names the recipient's address, a bank or operator text may carry numbers; all masked."""

from __future__ import annotations

from services.notifications.api import shown_error


def test_addresses_phones_and_id_numbers_in_an_error_are_masked() -> None:
    error = ("SMTPRecipientsRefused({'wang.fang+huzhu@mail.example.cn': (550, b'5.1.1 mailbox unavailable')}) "
             "retry 13812345678 for 53010219800101002X")
    shown = shown_error(error)
    assert shown is not None
    for secret in ("wang.fang+huzhu@mail.example.cn", "13812345678", "53010219800101002X"):
        assert secret not in shown, shown
    assert "w***@mail.example.cn" in shown and "mailbox unavailable" in shown
    assert shown_error(None) is None and shown_error("") == ""
    assert shown_error("tencent LimitExceeded.PhoneNumberDailyLimit: 单个手机号日下发条数超过上限") == \
        "tencent LimitExceeded.PhoneNumberDailyLimit: 单个手机号日下发条数超过上限"
