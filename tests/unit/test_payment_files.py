"""Bank payout files (issue 5 §2): pain.001.001.09 valid against the official XSD, the bank CSV byte for byte,
and a pain.002 report read back into per-line results."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from services.payments import files

DEBTOR = files.Debtor("云南省职工医疗互助中心", "2502041009024800001", "中国工商银行昆明分行营业部")
WHEN = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def line(amount: str, name: str = "李娜", account: str = "6222021234567890123") -> files.Line:
    return files.Line(str(uuid.uuid4()), Decimal(amount), name, account, "中国工商银行昆明五华支行")


def test_a_pain001_file_validates_against_the_official_xsd_with_chinese_names_and_domestic_accounts() -> None:
    lines = [line("3460.00"), line("0.01", name="欧阳&\"小<明>"), line("100000.50")]
    content = files.build_pain001(str(uuid.uuid4()), WHEN, date(2026, 3, 2), DEBTOR, lines)
    files.validate_pain001(content)
    text = content.decode("utf-8")
    assert "<Nm>李娜</Nm>" in text and "欧阳&amp;&quot;小&lt;明&gt;" in text
    assert "<Othr><Id>6222021234567890123</Id></Othr>" in text and "IBAN" not in text
    assert '<InstdAmt Ccy="CNY">3460.00</InstdAmt>' in text
    assert text.count("<NbOfTxs>3</NbOfTxs>") == 2 and text.count("<CtrlSum>103460.51</CtrlSum>") == 2


def test_a_broken_pain001_fails_validation_and_names_only_the_path() -> None:
    content = files.build_pain001(str(uuid.uuid4()), WHEN, date(2026, 3, 2), DEBTOR, [line("10.00")])
    broken = content.replace(b'Ccy="CNY"', b'Ccy="cny"')
    with pytest.raises(files.FileInvalid) as caught:
        files.validate_pain001(broken)
    assert "InstdAmt" in caught.value.problems[0] and "cny" not in str(caught.value)
    too_long = files.build_pain001(str(uuid.uuid4()), WHEN, date(2026, 3, 2), DEBTOR,
                                   [line("10.00", account="6" * 35)])
    with pytest.raises(files.FileInvalid):
        files.validate_pain001(too_long)
    with pytest.raises(files.FileInvalid):
        files.build_and_validate("pain001", str(uuid.uuid4()), WHEN, date(2026, 3, 2), DEBTOR,
                                 [line("10.00", name="名" * 141)])


def test_the_bank_csv_is_exactly_the_banks_payout_layout() -> None:
    lines = [line("3460.00"), line("1260.5", name='王"五', account="6217001234567890")]
    content = files.build_bank_csv(lines)
    assert content == (
        "\ufeff收款账号,户名,开户行,金额,用途\r\n"
        '"6222021234567890123","李娜","中国工商银行昆明五华支行",3460.00,"职工医疗互助补助"\r\n'
        '"6217001234567890","王""五","中国工商银行昆明五华支行",1260.50,"职工医疗互助补助"\r\n'
    ).encode("utf-8")
    files.validate_bank_csv(content, 2, Decimal("4720.50"))
    with pytest.raises(files.FileInvalid):
        files.validate_bank_csv(content, 2, Decimal("4720.51"))


def test_large_amounts_have_no_thousands_separator() -> None:
    content = files.build_bank_csv([line("1234567.80")]).decode("utf-8-sig")
    assert ",1234567.80," in content


def pain002(*transactions: tuple[str, str, str | None]) -> bytes:
    txs = "".join(
        f"<TxInfAndSts><OrgnlEndToEndId>{ref}</OrgnlEndToEndId><TxSts>{status}</TxSts>"
        + (f"<StsRsnInf><Rsn><Cd>{code}</Cd></Rsn></StsRsnInf>" if code else "") + "</TxInfAndSts>"
        for ref, status, code in transactions)
    return (f'<?xml version="1.0" encoding="UTF-8"?><Document xmlns="{files.PAIN002_NS}"><CstmrPmtStsRpt>'
            "<GrpHdr><MsgId>RPT1</MsgId><CreDtTm>2026-03-03T10:00:00</CreDtTm></GrpHdr>"
            "<OrgnlGrpInfAndSts><OrgnlMsgId>B1</OrgnlMsgId><OrgnlMsgNmId>pain.001.001.09</OrgnlMsgNmId>"
            "</OrgnlGrpInfAndSts><OrgnlPmtInfAndSts><OrgnlPmtInfId>B1</OrgnlPmtInfId>"
            f"{txs}</OrgnlPmtInfAndSts></CstmrPmtStsRpt></Document>").encode()


def test_a_pain002_report_becomes_per_line_results() -> None:
    paid, failed, pending = (uuid.uuid4().hex for _ in range(3))
    results = files.parse_pain002(pain002((paid, "ACSC", None), (failed, "RJCT", "AC04"), (pending, "PDNG", None)))
    assert results == [files.BankResult(paid, "paid", ""), files.BankResult(failed, "failed", "AC04"),
                       files.BankResult(pending, "not_final", "")]


def test_a_report_that_is_not_pain002_or_carries_entities_is_refused() -> None:
    with pytest.raises(files.FileInvalid):
        files.parse_pain002(b"<Document><x/></Document>")
    bomb = (b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaa">]><Document xmlns="'
            + files.PAIN002_NS.encode() + b'">&a;</Document>')
    with pytest.raises(files.FileInvalid):
        files.parse_pain002(bomb)
    with pytest.raises(files.FileInvalid):
        files.parse_pain002(pain002(("x", "BOGUS1", None)))


def test_libxml2_refuses_a_pain001_missing_a_required_element_without_quoting_personal_data() -> None:
    account = "6222021234567890123"
    content = files.build_pain001(str(uuid.uuid4()), WHEN, date(2026, 3, 2), DEBTOR,
                                  [line("10.00", account=account)])
    files.validate_pain001(content)
    with pytest.raises(files.FileInvalid) as caught:  # PmtMtd is mandatory in PmtInf
        files.validate_pain001(content.replace(b"<PmtMtd>TRF</PmtMtd>", b""))
    assert caught.value.problems[0].startswith("BtchBookg: SCHEMAV_ELEMENT_CONTENT")
    with pytest.raises(files.FileInvalid) as caught:  # one digit too many for Max34Text
        files.validate_pain001(content.replace(account.encode(), b"6" * 35))
    assert "MAXLENGTH" in caught.value.problems[0] and "666" not in str(caught.value)
    with pytest.raises(files.FileInvalid) as caught:
        files.validate_pain001(content[:-40])  # cut after the last transaction: premature end
    assert caught.value.problems[0].startswith("not well-formed XML")
    with pytest.raises(files.FileInvalid):
        files.validate_pain001(content.replace(b"<Document", b"<!DOCTYPE Document><Document", 1))


def test_a_pain002_with_a_doctype_or_an_external_entity_is_refused_before_any_lookup() -> None:
    good = pain002((uuid.uuid4().hex, "ACSC", None))
    assert len(files.parse_pain002(good)) == 1
    external = good.replace(b"<Document", b'<!DOCTYPE Document SYSTEM "http://bank.example/x.dtd"><Document', 1)
    with pytest.raises(files.FileInvalid) as caught:
        files.parse_pain002(external)
    assert "DOCTYPE" in caught.value.problems[0]
    xxe = good.replace(b"<Document", b'<!DOCTYPE Document [<!ENTITY x SYSTEM "file:///etc/passwd">]><Document', 1)
    with pytest.raises(files.FileInvalid):
        files.parse_pain002(xxe.replace(b"<MsgId>RPT1</MsgId>", b"<MsgId>&x;</MsgId>"))
    assert files.validate_pain002(good.replace(b"<TxSts>ACSC</TxSts>", b"<TxSts>ACSC1</TxSts>"))
