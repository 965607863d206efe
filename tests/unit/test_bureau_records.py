"""Bureau settlement records, pure (issue #12): one feed record checked (domain/feed.py), the 第十二条 refusals a
record shows (domain/bureau.py ``exclusion``) and typed-in figures against the bureau's (``compare``)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from services.claims.domain.bureau import Exclusion, compare, exclusion
from services.claims.domain.feed import Checked, Refusal, check_record
from shared.idnumber import check_digit

# 530102 (昆明市五华区), born 1968-04-23, sequence 041: a woman
CERTNO = "53010219680423041" + check_digit("53010219680423041")
# 15-digit first-generation card of a man born 1956-11-02 in 532301 (楚雄市)
OLD_CARD = "532301561102153"


def record(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "setl_id": "530000H2026112300017", "mdtrt_id": "MD-88231", "psn_name": "𠮷䶮·阿依古丽", "psn_cert_type": "01",
        "certno": CERTNO, "insutype": "310", "med_type": "21", "setl_time": "2026-10-14 16:42:07",
        "begndate": "2026-10-02", "enddate": "2026-10-14", "medfee_sumamt": "38412.66", "fund_pay_sumamt": "27105.20",
        "hifp_pay": "24105.20", "hifmi_pay": "3000.00", "psn_part_amt": "11307.46", "acct_pay": "2000.00",
        "psn_cash_pay": "9307.46", "fulamt_ownpay_amt": "1520.30"}
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def refused(result: Checked | Refusal, field: str, code: str) -> Refusal:
    assert isinstance(result, Refusal), result
    assert (result.field, result.code) == (field, code), result
    return result


def test_a_sound_record_is_kept_with_its_columns() -> None:
    checked = check_record(record())
    assert isinstance(checked, Checked)
    assert (checked.setl_id, checked.certno, checked.insutype, checked.med_type) == \
        ("530000H2026112300017", CERTNO, "310", "21")
    assert checked.setl_date == date(2026, 10, 14)
    assert (checked.medfee_sumamt, checked.psn_part_amt, checked.reversal) == \
        (Decimal("38412.66"), Decimal("11307.46"), False)


def test_an_old_15_digit_card_and_a_lower_case_x_are_read_as_enrollment_stores_them() -> None:
    checked = check_record(record(certno=OLD_CARD))
    assert isinstance(checked, Checked) and checked.certno == "53230119561102153" + check_digit("53230119561102153")
    x_body = next(b for b in (f"5301021970010100{i}" for i in range(10, 100)) if check_digit(b[:17]) == "X")[:17]
    checked = check_record(record(certno=x_body + "x"))
    assert isinstance(checked, Checked) and checked.certno == x_body + "X"


@pytest.mark.parametrize("missing", ["certno", "insutype", "med_type", "setl_time", "medfee_sumamt", "psn_part_amt"])
def test_each_required_field_missing_is_named(missing: str) -> None:
    refused(check_record(record(**{missing: None})), missing, "settlement_field_missing")
    refused(check_record(record(**{missing: ""})), missing, "settlement_field_missing")


def test_no_setl_id_is_refused_even_for_a_reversal() -> None:
    refused(check_record({"refd_setl_flag": "1", "certno": CERTNO}), "setl_id", "settlement_field_missing")


def test_a_reversal_needs_only_its_setl_id() -> None:
    checked = check_record({"setl_id": "S-1", "refd_setl_flag": "1"})
    assert isinstance(checked, Checked) and checked.reversal and checked.certno is None
    negative = check_record(record(medfee_sumamt="-38412.66", fund_pay_sumamt="-27105.20", hifp_pay="-24105.20",
                                   hifmi_pay="-3000.00", psn_part_amt="-11307.46", acct_pay="-2000.00",
                                   psn_cash_pay="-9307.46", fulamt_ownpay_amt="-1520.30"))
    assert isinstance(negative, Checked) and negative.reversal


def test_a_wrong_check_digit_a_bad_shape_and_an_unborn_person_are_invalid_certno() -> None:
    wrong = CERTNO[:17] + ("0" if CERTNO[17] != "0" else "1")
    assert "校验位" in refused(check_record(record(certno=wrong)), "certno", "invalid_certno").reason
    refused(check_record(record(certno="5.30102E+17")), "certno", "invalid_certno")  # Excel's habit
    future = "53010221990101001"
    refused(check_record(record(certno=future + check_digit(future))), "certno", "invalid_certno")


def test_a_passport_number_is_kept_without_a_check_digit() -> None:
    checked = check_record(record(psn_cert_type="02", certno="E12345678"))
    assert isinstance(checked, Checked) and checked.certno == "E12345678"


@pytest.mark.parametrize(("field", "value"), [("insutype", "999"), ("insutype", "31"), ("med_type", "99"),
                                              ("med_type", "2")])
def test_unknown_codes_are_refused(field: str, value: str) -> None:
    refused(check_record(record(**{field: value})), field, "settlement_code_invalid")


@pytest.mark.parametrize(("field", "value"), [("setl_time", "2026-13-01 10:00:00"), ("setl_time", "昨天"),
                                              ("begndate", "2026-02-30"), ("enddate", "20261301")])
def test_dates_that_do_not_exist_are_refused(field: str, value: str) -> None:
    refused(check_record(record(**{field: value})), field, "settlement_date_invalid")


def test_dates_in_other_spellings_are_read_and_a_stay_ending_before_it_began_is_refused() -> None:
    for value in ("2026-10-14", "2026/10/14", "20261014", "2026-10-14T16:42:07"):
        checked = check_record(record(setl_time=value))
        assert isinstance(checked, Checked) and checked.setl_date == date(2026, 10, 14), value
    refused(check_record(record(begndate="2026-10-15")), "enddate", "settlement_date_invalid")


@pytest.mark.parametrize(("field", "value"), [("psn_part_amt", "NaN"), ("psn_part_amt", "1e20"),
                                              ("medfee_sumamt", "12.345"), ("acct_pay", "两千"),
                                              ("hifob_pay", True), ("maf_pay", "Infinity"),
                                              ("psn_cash_pay", {"amount": 1})])
def test_amounts_that_are_not_decimal_16_2_are_named(field: str, value: Any) -> None:
    result = refused(check_record(record(**{field: value})), field, "settlement_amount_invalid")
    assert field in result.reason


def test_amounts_as_numbers_and_with_trailing_zeros_are_amounts() -> None:
    checked = check_record(record(medfee_sumamt=38412.66, psn_part_amt="11307.460"))
    assert isinstance(checked, Checked) and checked.psn_part_amt == Decimal("11307.46")


def test_identities_are_checked_within_one_fen() -> None:
    assert isinstance(check_record(record(medfee_sumamt="38412.67")), Checked)  # 0.01 off: tolerated
    result = refused(check_record(record(medfee_sumamt="38412.68")), "medfee_sumamt", "settlement_implausible")
    assert result.errors[0]["difference"] == "0.02"
    refused(check_record(record(hifp_pay="24000.00")), "fund_pay_sumamt", "settlement_implausible")
    refused(check_record(record(acct_pay="2500.00")), "psn_part_amt", "settlement_implausible")
    refused(check_record(record(fulamt_ownpay_amt="12000.00")), "fulamt_ownpay_amt", "settlement_implausible")


def test_ids_that_are_not_text_or_too_long_are_refused() -> None:
    refused(check_record(record(setl_id="S" * 61)), "setl_id", "settlement_record_invalid")
    refused(check_record(record(mdtrt_id=["M1"])), "mdtrt_id", "settlement_record_invalid")
    checked = check_record(record(setl_id=530000202611230017))  # a number where text was expected: kept as text
    assert isinstance(checked, Checked) and checked.setl_id == "530000202611230017"


# --- 第十二条 from the record ------------------------------------------------------------------------------
@pytest.mark.parametrize(("med_type", "expected"), [
    ("21", None), ("22", None), ("23", None), ("24", None), ("28", None),
    ("11", Exclusion.OUTPATIENT), ("13", Exclusion.OUTPATIENT), ("14", Exclusion.OUTPATIENT),
    ("41", Exclusion.OUTPATIENT), ("52", Exclusion.MATERNITY), ("51", Exclusion.MATERNITY),
    ("53", Exclusion.MATERNITY)])
def test_exclusion_by_med_type(med_type: str, expected: Exclusion | None) -> None:
    assert exclusion(record(med_type=med_type)) == expected


def test_work_injury_where_the_region_names_its_code() -> None:
    assert exclusion(record(med_type="9901")) is None
    assert exclusion(record(med_type="9901"), work_injury_med_types={"9901"}) == Exclusion.WORK_INJURY
    assert exclusion(record(med_type=" 52 ")) == Exclusion.MATERNITY and str(Exclusion.MATERNITY) == \
        "excluded_maternity"


# --- typed-in figures against the bureau's ------------------------------------------------------------------
def test_compare_names_each_difference_typed_minus_bureau() -> None:
    bureau = record(psn_part_amt="5000.00", psn_cash_pay="3000.00", medfee_sumamt="32105.20")
    typed = {"setl_id": bureau["setl_id"], "certno": CERTNO.lower(), "med_type": "21", "medfee_sumamt": "32105.2",
             "psn_part_amt": "20000.00", "fulamt_ownpay_amt": 1520.30, "mdtrt_id": "MD-88232"}
    assert compare(typed, bureau) == {
        "psn_part_amt": {"typed": "20000.00", "bureau": "5000.00", "difference": "15000.00"},
        "mdtrt_id": {"typed": "MD-88232", "bureau": "MD-88231"}}


def test_compare_ignores_what_only_one_side_carries_and_finds_nothing_in_the_same_record() -> None:
    assert compare(record(), record()) == {}
    assert compare({"psn_part_amt": "11307.46", "hosp_part_amt": "100.00"}, record()) == {}
    assert compare({"psn_part_amt": "abc"}, record()) == {}
