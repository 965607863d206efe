"""Events survive the wire unchanged; personal data is masked in responses and scrubbed from log lines."""

from __future__ import annotations

import json
import logging
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from pydantic import ValidationError

from shared.events import (
    EVENT_TYPES,
    ClaimAdjusted,
    ClaimApproved,
    ClaimOverdue,
    ClaimRejected,
    ClaimReturned,
    ClaimRevoked,
    ClaimSubmitted,
    CoverageEnded,
    Envelope,
    EventPayload,
    FeesReceived,
    FeesRemitted,
    LoyaltyGranted,
    LoyaltyRevoked,
    MemberContactChanged,
    MemberContactCode,
    MemberCovered,
    MemberDetailsCorrected,
    MemberSignupCode,
    PaymentBatchLinesReleased,
    PaymentBatchReleased,
    PaymentFailed,
    PaymentInstructionCreated,
    PaymentSettled,
    PeriodHistoryRecorded,
    PeriodPublished,
    ReleasedLine,
    parse_payload,
)
from shared.masking import mask_account, mask_certno, mask_phone
from shared.observability import JsonFormatter, PlainFormatter, scrub

CERTNO = "53010219900101123X"
ACCOUNT = "6222021234567890123"
PHONE = "13812345678"
CLAIM = str(uuid.uuid4())

SAMPLES: list[EventPayload] = [
    PeriodPublished(period="yn-18", rulebook={"code": "yn-18", "plans": [{"code": "inpatient"}],
                                              "approval": {"tiers": [{"level": "agency_point",
                                                                      "up_to": "3000.00"}]}}),
    MemberCovered(member_id="M1", period="yn-18", plans=["inpatient"], coverage_from=date(2022, 1, 1),
                  coverage_to=date(2022, 12, 31), name="王芳", certno=CERTNO, sex="female",
                  member_type="retired", unit="U1", unit_path=["C1", "O1", "A1", "U1"], bank_account=ACCOUNT,
                  bank_name="富滇银行昆明分行", phone=PHONE, renewing=True, fee=Decimal("120.00")),
    PeriodHistoryRecorded(period="yn-17", certnos=[CERTNO, "530102196203151226"]),
    CoverageEnded(member_id="M1", period="yn-18", ended_on=date(2022, 6, 30), reason="退出基本医保"),
    MemberSignupCode(member_id="M1", phone=PHONE, code="048213", expires_at=datetime(2026, 11, 23, 12, 10, tzinfo=UTC)),
    MemberContactCode(member_id="M1", phone=PHONE, code="731905", expires_at=datetime(2026, 12, 8, 9, 10, tzinfo=UTC)),
    MemberDetailsCorrected(member_id="M1", name="王芳", certno=CERTNO, sex="female", member_type="retired"),
    ClaimAdjusted(adjustment_id="A1", claim_id="C2", member_id="M1", period="yn-18", amount=Decimal("-260.00"),
                  aid_amount=Decimal("100.00"), reason="前一次住院申请被撤销，重新核算"),
    ClaimOverdue(claim_id="C1", member_id="M1", level="office", org="YN-KM", due_date=date(2026, 11, 30),
                 kind="reminder"),
    PaymentBatchReleased(batch_id="B1", count=3, total=Decimal("1260.00"), released_by="finance2"),
    PaymentBatchLinesReleased(batch_id="B1", released_at=datetime(2026, 12, 8, 1, 0, tzinfo=UTC), part=1, parts=1,
                              lines=[ReleasedLine(claim_id=CLAIM, instruction_id="I1", attempt=1),
                                     ReleasedLine(claim_id=CLAIM, instruction_id="I2", attempt=1,
                                                  adjustment_id="A1")]),
    FeesRemitted(remittance_id="R9", period="yn-18", office="YN-KM", amount=Decimal("1500.00"), reference="汇款 01",
                 remitted_at=date(2026, 3, 1)),
    LoyaltyGranted(member_id="M1", period="yn-18", grant="major_accident_disability_cover",
                   periods_without_aid=["yn-17", "yn-16", "yn-15"], version=1),
    LoyaltyRevoked(member_id="M1", period="yn-18", grant="major_accident_disability_cover",
                   periods_without_aid=["yn-17", "yn-16", "yn-15"], aided_periods=["yn-16"], version=2),
    MemberContactChanged(member_id="M1", bank_account=ACCOUNT, bank_name="中国农业银行昆明分行", phone=PHONE,
                         name="王芳"),
    FeesReceived(roster_id="R1", period="yn-18", unit="U1", amount=Decimal("1500"), reference="转账 001"),
    ClaimSubmitted(claim_id=CLAIM, member_id="M1", period="yn-18", status="in_review",
                   aid_amount=Decimal("3460.00")),
    ClaimSubmitted(claim_id=CLAIM, member_id="M1", period="", status="rejected", aid_amount=None),
    ClaimApproved(claim_id=CLAIM, member_id="M1", period="yn-18", plan="inpatient", aid_amount=Decimal("1260"),
                  rulebook_code="yn-18"),
    ClaimRejected(claim_id=CLAIM, member_id="M1", period="yn-18", code="med_type_not_covered", detail="门诊"),
    ClaimReturned(claim_id=CLAIM, member_id="M1", level="office", reason="缺少出院证"),
    ClaimRevoked(claim_id=CLAIM, member_id="M1", period="yn-18", reason="伪造结算单"),
    PaymentInstructionCreated(instruction_id="I1", claim_id=CLAIM, member_id="M1", attempt=1,
                              amount=Decimal("0.50")),
    PaymentSettled(instruction_id="I1", claim_id=CLAIM, member_id="M1", amount=Decimal("100000.00")),
    PaymentFailed(instruction_id="I1", claim_id=CLAIM, member_id="M1", reason="账户已销户"),
]

APPROVED = next(s for s in SAMPLES if isinstance(s, ClaimApproved))


def test_there_is_a_sample_of_every_event_type() -> None:
    assert {type(s).TYPE for s in SAMPLES} == set(EVENT_TYPES)
    assert all(EVENT_TYPES[cls.TYPE] is cls for cls in map(type, SAMPLES))


@pytest.mark.parametrize("payload", SAMPLES, ids=lambda p: p.TYPE)
def test_every_event_round_trips_through_json(payload: EventPayload) -> None:
    envelope = payload.envelope()
    assert envelope.type == payload.TYPE and envelope.key == payload.key() and envelope.version == 1
    wire = envelope.model_dump_json()
    back = Envelope.model_validate_json(wire)
    assert back == envelope
    parsed = parse_payload(back)
    assert type(parsed) is type(payload)
    assert parsed == payload
    # Through plain JSON text too, as another language's consumer would see it.
    assert parse_payload(Envelope.model_validate(json.loads(wire))) == payload


def test_money_travels_as_a_two_place_string_never_a_float() -> None:
    envelope = APPROVED.envelope()
    assert envelope.payload["aid_amount"] == "1260.00"
    assert json.loads(envelope.model_dump_json())["payload"]["aid_amount"] == "1260.00"
    assert APPROVED.model_dump()["aid_amount"] == Decimal("1260")  # python mode keeps the Decimal
    small = PaymentInstructionCreated(instruction_id="I", claim_id="C", member_id="M", attempt=1,
                                      amount=Decimal("0.5"))
    assert small.envelope().payload["amount"] == "0.50"
    assert ClaimSubmitted(claim_id="C", member_id="M", period="p", status="rejected",
                          aid_amount=None).envelope().payload["aid_amount"] is None


def test_the_key_is_the_aggregate_id() -> None:
    assert SAMPLES[1].envelope().key == "M1"
    assert ClaimApproved(claim_id=CLAIM, member_id="M1", period="p", plan="inpatient", aid_amount=Decimal(1),
                         rulebook_code="x").envelope().key == CLAIM


def test_an_unknown_event_type_is_refused() -> None:
    envelope = SAMPLES[0].envelope().model_copy(update={"type": "claim.teleported"})
    with pytest.raises(ValueError, match=r"claim\.teleported"):
        parse_payload(envelope)


@pytest.mark.parametrize("change", [
    {"aid_amount": "lots"},            # not an amount
    {"unexpected": "field"},           # extra fields are refused
    {"claim_id": None},                # a required field missing its value
])
def test_a_bad_payload_is_refused(change: dict[str, object]) -> None:
    envelope = APPROVED.envelope()
    envelope = envelope.model_copy(update={"payload": {**envelope.payload, **change}})
    with pytest.raises(ValidationError):
        parse_payload(envelope)


def test_a_payload_missing_a_field_is_refused() -> None:
    envelope = APPROVED.envelope()
    payload = dict(envelope.payload)
    del payload["member_id"]
    with pytest.raises(ValidationError):
        parse_payload(envelope.model_copy(update={"payload": payload}))


def test_a_malformed_envelope_is_refused() -> None:
    wire = json.loads(SAMPLES[2].envelope().model_dump_json())
    with pytest.raises(ValidationError):
        Envelope.model_validate_json(json.dumps({**wire, "surprise": 1}))
    del wire["event_id"]
    with pytest.raises(ValidationError):
        Envelope.model_validate_json(json.dumps(wire))


# --- masking in responses ---------------------------------------------------------------------------------
def test_a_resident_id_keeps_its_region_and_last_four() -> None:
    assert mask_certno(CERTNO) == "530102********123X"
    assert mask_certno("530102199001011234") == "530102********1234"
    assert mask_certno("1234567890") == "**********"


def test_a_bank_account_keeps_its_first_and_last_four() -> None:
    assert mask_account(ACCOUNT) == "6222" + "*" * 11 + "0123"
    assert mask_account("6222021234567890") == "6222********7890"
    assert mask_account("12345678") == "********"


def test_a_phone_keeps_its_first_three_and_last_four() -> None:
    assert mask_phone(PHONE) == "138****5678"
    assert mask_phone("123456") == "******"


# --- scrubbing log lines ----------------------------------------------------------------------------------
def assert_scrubbed(line: str) -> str:
    out = scrub(line)
    for secret in (CERTNO, ACCOUNT, PHONE, "19900101", "02123456789"):
        assert secret not in out, out
    return out


def test_scrub_masks_an_id_an_account_and_a_mobile_inside_a_log_line() -> None:
    out = assert_scrubbed(f"claim submitted certno={CERTNO} account {ACCOUNT}, phone: {PHONE} (ok)")
    assert "530102********123X" in out and "6222****0123" in out and "138****5678" in out
    assert out.startswith("claim submitted certno=") and out.endswith("(ok)")


def test_scrub_leaves_ordinary_numbers_alone() -> None:
    line = "claim 3460.00 yuan, 5 working days, period 2026, setl 12345678"
    assert scrub(line) == line


def test_scrub_masks_personal_data_written_next_to_chinese_text() -> None:
    # Chinese log lines put numbers straight after characters: 身份证号530102..., no space or punctuation.
    out = assert_scrubbed(f"会员身份证号{CERTNO}已参互，银行账号{ACCOUNT}，手机{PHONE}")
    assert "530102********123X" in out and "6222****0123" in out and "138****5678" in out


def test_both_log_formatters_scrub_the_message() -> None:
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "payee account %s phone %s", (ACCOUNT, PHONE),
                               None)
    record.fields = {"certno": CERTNO}
    as_json = json.loads(JsonFormatter("claims").format(record))
    assert ACCOUNT not in as_json["msg"] and PHONE not in as_json["msg"] and as_json["certno"] != CERTNO
    plain = PlainFormatter("claims").format(record)
    assert ACCOUNT not in plain and PHONE not in plain
