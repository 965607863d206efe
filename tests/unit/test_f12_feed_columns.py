"""The bureau feed's records checked as columns (domain/feed_columns.py, reading.Lines.frame) decide exactly as
the one-by-one checks of domain/feed.py: a record the columns call sound is one check_record keeps, with the same
columns; every other record is left, unchanged and in order, to be read one by one (so refusals, lines and
messages do not change)."""

from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from services.claims.domain.feed import Refusal, check_record
from services.claims.domain.feed_columns import Sound
from services.claims.settlements.reading import BLOCK, Lines
from services.claims.settlements.service import split_block
from shared.idnumber import check_digit

TODAY = date(2026, 12, 8)


def certno(n: int, born: str = "19850612") -> str:
    body = f"530102{born}{n % 1000:03d}"  # 昆明市五华区
    return body + check_digit(body)


def record(n: int, **changes: Any) -> dict[str, Any]:
    """A 2304 settlement as a Yunnan bureau sends it (the bill three times the person's part)."""
    day = TODAY - timedelta(days=10 + n % 40)
    base = Decimal(1000 + n * 37 % 9000) + Decimal(n % 100) / 100
    rec: dict[str, Any] = {
        "setl_id": f"5301{n:012d}", "mdtrt_id": f"M5301{n:010d}", "psn_no": f"53000000{n:08d}",
        "psn_name": ["欧阳𠮷", "王䶮", "李娜"][n % 3], "psn_cert_type": "01", "certno": certno(n),
        "insutype": "310", "med_type": "21", "setl_time": f"{day} 15:04:05", "begndate": str(day - timedelta(days=6)),
        "enddate": str(day), "medfee_sumamt": f"{base * 3:.2f}", "fund_pay_sumamt": f"{base * 2:.2f}",
        "hifp_pay": f"{base * 2:.2f}", "psn_part_amt": f"{base:.2f}", "acct_pay": f"{base / 4:.2f}",
        "psn_cash_pay": f"{base - Decimal(f'{base / 4:.2f}'):.2f}", "fulamt_ownpay_amt": "300.00",
        "fixmedins_name": "昆明医科大学第一附属医院", "refd_setl_flag": "0"}
    rec.update(changes)
    return {k: v for k, v in rec.items() if v is not ...}


def line(rec: dict[str, Any] | str, ascii_only: bool = False) -> bytes:
    return (rec if isinstance(rec, str) else json.dumps(rec, ensure_ascii=ascii_only)).encode()


def assert_same_decisions(raws: list[bytes | None]) -> tuple[Sound, int]:
    """The block's records decided by columns are exactly the sound ones of check_record, in file order; the
    others come out as Lines.items would give them. Returns the columns' records and how many were left."""
    block = Lines(list(range(1, len(raws) + 1)), raws, 100)
    sound, others = split_block(block, TODAY)
    one_by_one = block.items()
    left = {item[1] for item in others}
    assert others == [item for item in one_by_one if item[1] in left]
    expected = Sound()
    for _, index, rec, text in one_by_one:
        if index in left:
            continue
        assert not isinstance(rec, Refusal) and text is not None
        checked = check_record(rec, TODAY)
        assert not isinstance(checked, Refusal), (index, checked)
        assert not checked.reversal
        expected.append(checked, text)
    assert sound == expected
    return sound, len(others)


def test_a_plain_block_is_decided_by_columns_whole() -> None:
    raws: list[bytes | None] = [line(record(n)) for n in range(500)]
    sound, left = assert_same_decisions(raws)
    assert left == 0 and len(sound) == 500
    assert sound.certno[7] == certno(7) and sound.medfee_sumamt[1] == record(1)["medfee_sumamt"]
    assert sound.setl_date[0] == TODAY - timedelta(days=10) and sound.mdtrt_id[2] == "M53010000000002"
    assert sound.record[3] == raws[3]  # kept as sent
    # read one by one as (Checked, text), the way check_record gives them
    checked, text = next(iter(sound))
    assert checked == check_record(json.loads(text), TODAY) and text.encode() == raws[0]


def test_refusals_and_unusual_records_are_left_to_the_one_by_one_checks() -> None:
    wrong = certno(1)[:17] + ("0" if certno(1)[17] != "0" else "1")
    odd: list[dict[str, Any] | str] = [
        record(1, certno=wrong), record(2, certno=certno(2).lower()[:17] + "x"), record(3, certno=" " + certno(3)),
        record(4, setl_id=...), record(5, medfee_sumamt="1x"), record(6, medfee_sumamt="-5.00"),
        record(7, psn_part_amt="12.345"), record(8, hifp_pay="0.50"), record(9, setl_time="2026-02-30 10:00:00"),
        record(10, setl_time="2026-02-03 24:00:00"), record(11, setl_time="2026-02-03 10:00:60"),
        record(12, setl_time="2026/02/03 10:00:00"), record(13, setl_time="2026-02-03"),
        record(14, begndate="2026-12-01", enddate="2026-11-01"), record(15, insutype="999"),
        record(16, med_type=" 21"), record(17, refd_setl_flag="1"), record(18, psn_cert_type="02"),
        record(19, fulamt_ownpay_amt="99999999.00"), record(20, other_pay_amt="abc"), record(21, mdtrt_id="M 1"),
        record(22, medfee_sumamt=""), record(23, certno=certno(23, born="20300101")),
        record(24, certno="530102198506120" + "12"), record(25, medfee_sumamt="١٢.00"),
        record(26, acct_pay=...), record(27, hosp_part_amt="1.00"), record(28, setl_id="S" * 61),
        record(29, psn_no=None), record(30, age=40), record(31, extra={"a": "b"}), record(32, setl_time="0000-01-01 10:00:00"),
        record(33, certno=certno(33, born="18991231")), record(34, inscp_scp_amt="1e5"),
        '{"setl_id": "S-broken", "certno": ', "[1, 2]", "{}", "null", '"text"',
    ]
    raws: list[bytes | None] = [line(record(100))]
    for rec in odd:
        raws.append(line(rec))
        raws.append(line(record(len(raws) + 200)))
    raws += [None, b"\xff\xfe{}", line(record(40, setl_id="S\\u0000")).replace(b"\\\\u0000", b"\\u0000"),
             line(record(41, psn_name="\ud842"), ascii_only=True), line(record(42), ascii_only=True),
             line(record(43)).replace(b'"setl_id"', b'"setl_id": "dup", "setl_id"'),
             line(record(44)).replace(b'"medfee_sumamt"', b'"medfee_sumamt": "1.00", "medfee_sumamt"'),
             line(record(45)).replace(b'"psn_name": "', b'"psn_name": "\\"'),
             line(record(46)) + b"   ", b"  " + line(record(47)), line(record(48)).replace(b": ", b" : ")]
    sound, left = assert_same_decisions(raws)
    # decided by columns: the plain records between the odd ones, and the last three but one (escaped text, spaces
    # around the object); none of the odd ones
    odd_ids = {rec.get("setl_id") for rec in odd if isinstance(rec, dict)}
    assert not odd_ids & set(sound.setl_id)
    assert len(sound) == 1 + len(odd) + 3 and left == len(raws) - len(sound)


AMOUNTS = st.one_of(st.decimals(min_value=-10**6, max_value=10**6, places=2).map(str),
                    st.sampled_from(["0", "1.5", "-0.00", "100.001", "1,000.00", " 5.00", "5.00 ", "", "1e3",
                                     "99999999999999.99", "100000000000000.00", "NaN", "Infinity"]))
FIELDS = {
    "setl_id": st.sampled_from(["53010001", "", " 5301", "S" * 60, "S" * 61, "中文号", "a b"]),
    "certno": st.sampled_from([certno(5), certno(6).lower(), certno(7)[:17] + "0", "530102850612001", "",
                               certno(8, born="19000101"), certno(9, born="20991231"), "ABCDEFGHIJKLMNOPQR"]),
    "psn_cert_type": st.sampled_from(["01", "02", "", " 01", ...]),
    "insutype": st.sampled_from(["310", "390", "999", "", ...]),
    "med_type": st.sampled_from(["21", "52", "99", "", ...]),
    "setl_time": st.sampled_from(["2026-11-02 08:00:00", "2026-11-02", "20261102", "2026/11/02 08:00:00",
                                  "2026-11-31 08:00:00", "2026-11-02T08:00:00", "2026-11-02 08:61:00", "", ...]),
    "begndate": st.sampled_from(["2026-10-20", "2026-11-05", "2026/10/20", "", ...]),
    "enddate": st.sampled_from(["2026-11-02", "2026-10-19", "2026-02-29", "", ...]),
    "refd_setl_flag": st.sampled_from(["0", "1", "", ...]),
    "medfee_sumamt": AMOUNTS, "fund_pay_sumamt": AMOUNTS, "psn_part_amt": AMOUNTS, "hifp_pay": AMOUNTS,
    "acct_pay": AMOUNTS, "psn_cash_pay": AMOUNTS, "fulamt_ownpay_amt": AMOUNTS, "hosp_part_amt": AMOUNTS,
    "mdtrt_id": st.sampled_from(["M1", "", "M 1", ...]),
}


@settings(max_examples=60, deadline=None)
@given(st.lists(st.fixed_dictionaries({}, optional=FIELDS), min_size=1, max_size=40))
def test_any_mix_of_fields_is_decided_as_one_by_one(changes: list[dict[str, Any]]) -> None:
    raws: list[bytes | None] = []
    for n, change in enumerate(changes):
        raws.append(line(record(n, **change)))
        raws.append(line(record(1000 + n)))
    assert_same_decisions(raws)


def test_blocks_are_bounded() -> None:
    assert 1000 <= BLOCK <= 20000  # a block's frame is the only thing held whole (memory stays flat)
