"""Every member template (services/notifications/handlers.py): Chinese, with amounts and dates, and never an ID
number, a bank account or a phone number, even when free text from a bank or a reviewer carries one."""

from __future__ import annotations

import re
import uuid
from datetime import date
from decimal import Decimal

from services.notifications.handlers import render, scrub
from shared.events import (
    ClaimAdjusted,
    ClaimApproved,
    ClaimRejected,
    ClaimReturned,
    ClaimRevoked,
    ClaimSubmitted,
    EventPayload,
    MemberCovered,
    PaymentFailed,
    PaymentInstructionCreated,
    PaymentSettled,
)

CERTNO = "53010219880314021X"
ACCOUNT = "6222023562301238362"
PHONE = "13888123456"
CLAIM = str(uuid.uuid4())
ON = date(2026, 11, 23)


def events() -> list[EventPayload]:
    m = "M1"
    return [
        MemberCovered(member_id=m, period="yn-18-2026", plans=["inpatient"], coverage_from=date(2026, 1, 1),
                      coverage_to=date(2026, 12, 31), name="𠮷䶮·阿依古丽", certno=CERTNO, sex="female",
                      member_type="in_service", unit="U", unit_path=["YN", "U"], bank_account=ACCOUNT,
                      bank_name="中国工商银行昆明五华支行", phone=PHONE, renewing=False, fee=Decimal("150.00")),
        ClaimSubmitted(claim_id=CLAIM, member_id=m, period="yn-18-2026", status="in_review",
                       aid_amount=Decimal("1260.00")),
        ClaimApproved(claim_id=CLAIM, member_id=m, period="yn-18-2026", plan="inpatient",
                      aid_amount=Decimal("1260.00"), rulebook_code="yn-18"),
        ClaimApproved(claim_id=CLAIM, member_id=m, period="yn-18-2026", plan="inpatient",
                      aid_amount=Decimal("0.00"), rulebook_code="yn-18"),
        ClaimRejected(claim_id=CLAIM, member_id=m, period="yn-18-2026", code="not_covered",
                      detail=f"身份证 {CERTNO} 不在本期名册"),
        ClaimReturned(claim_id=CLAIM, member_id=m, level="agency_point", reason=f"请补充账号 {ACCOUNT} 的开户证明"),
        ClaimRevoked(claim_id=CLAIM, member_id=m, period="yn-18-2026", reason="重复报销"),
        ClaimAdjusted(adjustment_id="A1", claim_id=CLAIM, member_id=m, period="yn-18-2026",
                      amount=Decimal("240.50"), aid_amount=Decimal("1500.50"), reason="实施办法更正"),
        ClaimAdjusted(adjustment_id="A2", claim_id=CLAIM, member_id=m, period="yn-18-2026",
                      amount=Decimal("-100.00"), aid_amount=Decimal("1160.00"), reason="重新核算"),
        PaymentInstructionCreated(instruction_id="I1", claim_id=CLAIM, member_id=m, attempt=1,
                                  amount=Decimal("1260.00")),
        PaymentSettled(instruction_id="I1", claim_id=CLAIM, member_id=m, amount=Decimal("1260.00")),
        PaymentFailed(instruction_id="I1", claim_id=CLAIM, member_id=m, reason=f"账户 {ACCOUNT} 已销户"),
    ]


def test_every_template_has_a_date_and_no_id_number_account_or_phone() -> None:
    seen = set()
    for event in events():
        rendered = render(event, ON)
        assert rendered is not None, event.TYPE
        template, text = rendered
        seen.add(template)
        assert re.search(r"[\u4e00-\u9fff]", text), text
        assert "2026年11月23日" in text or "2026年1月1日" in text, text
        for secret in (CERTNO, ACCOUNT, PHONE, CERTNO[-8:], ACCOUNT[-8:]):
            assert secret not in text, (template, text)
        assert not re.search(r"\d{7,}", text), (template, text)
    assert seen == {"member_covered", "claim_submitted", "claim_approved", "claim_approved_zero", "claim_rejected",
                    "claim_returned", "claim_revoked", "claim_topped_up", "claim_recovery", "payment_scheduled",
                    "payment_paid", "payment_failed"}


def test_amounts_are_written_with_two_places() -> None:
    texts = {t: x for t, x in (render(e, ON) or ("", "") for e in events())}
    assert "1260.00 元" in texts["claim_approved"] and "240.50 元" in texts["claim_topped_up"]
    assert "100.00 元" in texts["claim_recovery"] and "1260.00 元" in texts["payment_paid"]


def test_scrub_masks_long_numbers_and_leaves_short_ones() -> None:
    assert scrub(f"账户 {ACCOUNT} 已销户") == "账户 62***************62 已销户"
    assert CERTNO not in scrub(CERTNO) and scrub("第七条 5 个工作日 2026") == "第七条 5 个工作日 2026"
