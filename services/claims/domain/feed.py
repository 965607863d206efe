"""One record of a bureau's settlement feed, checked (第九条: aid is paid on the bureau's settlement data, so
what is kept of it must be sound). Pure: no I/O; ``services/claims/settlements`` reads the lines and stores.

A record is refused with the field it fails on and a code for programs:

- ``settlement_field_missing``: a required field absent or empty. Every record needs ``setl_id``; a settlement
  (not a reversal) also needs ``certno``, ``insutype``, ``med_type``, ``setl_time``, ``medfee_sumamt`` and
  ``psn_part_amt`` (who, which scheme, what kind of stay, when, what it cost, what the person bore);
- ``settlement_record_invalid``: an id that is not text or too long (``setl_id``/``mdtrt_id`` 60 characters);
- ``invalid_certno``: a resident ID card (``psn_cert_type`` 01 or absent) whose number has the wrong shape, a
  wrong GB 11643 check digit or an impossible birth date (shared/idnumber.py);
- ``settlement_code_invalid``: ``insutype`` or ``med_type`` not a code of the national platform (below);
- ``settlement_date_invalid``: ``setl_time`` (``yyyy-MM-dd HH:mm:ss``, or a date), ``begndate``, ``enddate``
  not a date, or the stay ending before it began;
- ``settlement_amount_invalid``: an amount that is not a decimal(16,2);
- ``settlement_implausible``: the platform's identities do not hold within 0.01 (domain/settlement.py).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from services.claims.domain.settlement import FUND_PARTS, PERSON_PARTS, TOLERANCE, check_settlement, is_amount
from services.claims.domain.settlement import message as implausible_message
from shared.idnumber import EARLIEST_BIRTH, IdNumberError, check_digit, lookup_form, parse
from shared.idnumber import _birth_date as birth_date

# 险种类型 insutype (国家医疗保障信息平台 code table; docs/SETTLEMENT.md)
INSUTYPES: dict[str, str] = {
    "310": "职工基本医疗保险", "320": "公务员医疗补助", "330": "大额医疗费用补助", "340": "离休人员医疗保障",
    "390": "城乡居民基本医疗保险", "391": "城镇居民基本医疗保险", "392": "城乡居民大病医疗保险",
}
# 医疗类别 med_type: 1x outpatient, 2x inpatient, 5x maternity (the platform's code families)
MED_TYPES: dict[str, str] = {
    "11": "普通门诊", "12": "门诊挂号", "13": "急诊", "14": "门诊慢特病", "15": "特药", "19": "其他门诊",
    "21": "普通住院", "22": "外伤住院", "23": "转外诊治住院", "24": "急诊转住院", "25": "其他住院",
    "28": "日间手术", "41": "定点药店购药", "51": "生育门诊", "52": "生育住院", "53": "计划生育手术",
}
REQUIRED = ("certno", "insutype", "med_type", "setl_time", "medfee_sumamt", "psn_part_amt")
RESIDENT_ID_CARD = "01"


@dataclass(frozen=True, slots=True)
class Refusal:
    field: str
    code: str
    reason: str
    errors: list[dict[str, object]] = dataclass_field(default_factory=list)


@dataclass(slots=True)
class Checked:
    """A sound record: the columns kept beside the raw record (the reversal's own fields may be absent)."""

    setl_id: str
    certno: str | None
    mdtrt_id: str | None
    insutype: str | None
    med_type: str | None
    setl_date: date | None
    medfee_sumamt: Decimal | None
    psn_part_amt: Decimal | None
    reversal: bool


def is_reversal(record: Mapping[str, Any]) -> bool:
    """A reversal: refd_setl_flag set, or negative amounts (docs/SETTLEMENT.md)."""
    if record.get("refd_setl_flag") not in (None, "", "0", 0, False):
        return True
    for name in ("medfee_sumamt", "psn_part_amt", "fund_pay_sumamt"):
        value = record.get(name)
        if value is None or isinstance(value, bool):
            continue
        try:
            amount = Decimal(str(value))
        except InvalidOperation:
            continue
        if amount.is_finite() and amount < 0:
            return True
    return False


# A decimal(16,2) as bureaus write it: read by one regular expression and one Decimal (a feed has a million).
_PLAIN_AMOUNT = re.compile(r"-?\d{1,14}(?:\.\d{1,2})?")
_MONEY_SUFFIXES = ("_amt", "_pay", "_sumamt")
_IS_MONEY: dict[str, bool] = {}
_LAST_DIGITS = frozenset("0123456789Xx")
_MONEY_FIELDS = ("medfee_sumamt", "fund_pay_sumamt", "psn_part_amt", "hosp_part_amt", "fulamt_ownpay_amt",
                 "overlmt_selfpay", "preselfpay_amt", "inscp_scp_amt", "act_pay_dedc", *FUND_PARTS, *PERSON_PARTS,
                 "psn_cash_pay")
_MONEY_SET = frozenset(_MONEY_FIELDS)
_KNOWN_FIELDS = frozenset({
    *_MONEY_FIELDS, "setl_id", "mdtrt_id", "psn_no", "psn_name", "gend", "brdy", "age", "psn_cert_type", "certno",
    "insutype", "med_type", "setl_time", "pool_prop_selfpay", "begndate", "enddate", "fixmedins_code",
    "fixmedins_name", "refd_setl_flag", "dscg_maindiag_code", "dscg_maindiag_name", "ipt_days", "dise_codg",
    "dise_name", "clr_type", "clr_way", "mdtrt_cert_type", "psn_type", "cvlserv_flag", "emp_name"})
_TEXT_FIELDS = ("certno", "insutype", "med_type", "setl_time", "psn_cert_type", "begndate", "enddate")
_OTHER_TEXT_FIELDS = tuple(sorted(_KNOWN_FIELDS - _MONEY_SET - {"setl_id", "mdtrt_id", *_TEXT_FIELDS}))
_ZERO = Decimal("0")


def _is_money(name: str) -> bool:
    known = _IS_MONEY.get(name)
    if known is None:
        known = name.endswith(_MONEY_SUFFIXES)
        if len(_IS_MONEY) < 4096:  # field names repeat; a hostile feed's made-up ones are not all remembered
            _IS_MONEY[name] = known
    return known


def _amount(value: object) -> Decimal | str:
    """The amount, or why it is not one."""
    if type(value) is str and _PLAIN_AMOUNT.fullmatch(value):
        return Decimal(value)
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        return "不是金额"
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        return "不是金额"
    if not is_amount(amount):
        return "不是金额（非数字、无穷大或超过 decimal(16,2)）"
    if amount != amount.quantize(Decimal("0.01")):
        return "金额最多两位小数"
    return amount


def _resident_id(text: str, today: date | None) -> str | Refusal:
    """The 18-digit number of a resident ID card (GB 11643), as shared/idnumber.py reads it."""
    if len(text) == 18 and text[:17].isdigit() and text[17] in _LAST_DIGITS:  # the usual case, quickly
        text = text.upper()
        born = birth_date(text[6:14])
        if check_digit(text[:17]) == text[17] and born is not None and EARLIEST_BIRTH <= born <= (
                today or date.today()):
            return text
    try:
        return parse(text, today=today).number
    except IdNumberError as exc:
        return Refusal("certno", "invalid_certno", f"certno：{exc.message}")


def _day(value: str, name: str) -> date | Refusal:
    try:
        if len(value) == 19:
            return datetime.fromisoformat(value).date()
        if len(value) == 10:
            return date.fromisoformat(value.replace("/", "-"))
        if len(value) == 8 and value.isdigit():
            return datetime.strptime(value, "%Y%m%d").date()
        return datetime.fromisoformat(value.replace("/", "-")).date()
    except ValueError:
        return Refusal(name, "settlement_date_invalid",
                       f"{name} 不是有效的日期时间（应为 yyyy-MM-dd HH:mm:ss）：{value[:40]}")


def _identities_hold(amounts: dict[str, Decimal]) -> bool:
    """The identities of domain/settlement.py, summed directly (its check_settlement names what fails)."""
    get = amounts.get
    medfee, fund, person = get("medfee_sumamt"), get("fund_pay_sumamt"), get("psn_part_amt")
    if medfee is not None and fund is not None and person is not None and \
            abs(medfee - fund - person - get("hosp_part_amt", _ZERO)) > TOLERANCE:
        return False
    if fund is not None:
        parts = [amounts[n] for n in FUND_PARTS if n in amounts]
        if parts and abs(fund - sum(parts)) > TOLERANCE:
            return False
    if person is not None:
        parts = [amounts[n] for n in PERSON_PARTS if n in amounts]
        if parts and abs(person - sum(parts)) > TOLERANCE:
            return False
        own = get("fulamt_ownpay_amt")
        if own is not None and abs(own) > abs(person):
            return False
    return True


def check_record(record: Mapping[str, Any], today: date | None = None) -> Checked | Refusal:
    """The record as kept, or the first reason it cannot be (in the order of the module's docstring)."""
    texts: dict[str, str | None] = {}
    for name in ("setl_id", "mdtrt_id", *_TEXT_FIELDS):
        value = record.get(name)
        if value is None:
            texts[name] = None
        elif type(value) is str:
            texts[name] = value.strip() or None
        elif isinstance(value, int) and not isinstance(value, bool):
            texts[name] = str(value)
        else:
            return Refusal(name, "settlement_record_invalid", f"{name} 必须是文本")
    for name in _OTHER_TEXT_FIELDS:  # a known field holds a text or a number, never an object or a list
        if isinstance(record.get(name), dict | list):
            return Refusal(name, "settlement_record_invalid", f"{name} 必须是文本或数字，不能是对象或数组")
    setl_id, mdtrt_id = texts["setl_id"], texts["mdtrt_id"]
    if setl_id is None:
        return Refusal("setl_id", "settlement_field_missing", "缺少 setl_id（结算 ID）")
    for name, text, longest in (("setl_id", setl_id, 60), ("mdtrt_id", mdtrt_id, 60)):
        if text is not None and len(text) > longest:
            return Refusal(name, "settlement_record_invalid", f"{name} 超过 {longest} 个字符")
    amounts: dict[str, Decimal] = {}
    bad: list[tuple[str, str]] = []
    names: Any = _MONEY_SET.intersection(record)
    if not record.keys() <= _KNOWN_FIELDS:  # national money fields beyond the usual ones, or made-up names
        names = [*names, *(n for n in record.keys() - _KNOWN_FIELDS if _is_money(n))]
    fullmatch = _PLAIN_AMOUNT.fullmatch
    for name in names:
        value = record[name]
        if value is None or value == "":
            continue
        if type(value) is str and fullmatch(value):
            amounts[name] = Decimal(value)
            continue
        amount = _amount(value)
        if type(amount) is str:
            bad.append((name, amount))
        else:
            amounts[name] = amount  # type: ignore[assignment]
    flag = record.get("refd_setl_flag")
    reversal = flag not in (None, "", "0", 0, False)
    if not reversal:
        for name in ("medfee_sumamt", "psn_part_amt", "fund_pay_sumamt"):
            total = amounts.get(name)
            if total is not None and total < 0:
                reversal = True
                break
    if not reversal:
        for name in REQUIRED:
            if name in texts:
                if texts[name] is None:
                    return Refusal(name, "settlement_field_missing", f"缺少 {name}")
            elif name not in amounts and all(b != name for b, _ in bad):
                return Refusal(name, "settlement_field_missing", f"缺少 {name}")
    certno = texts["certno"]
    if certno is not None:
        if texts["psn_cert_type"] in (None, RESIDENT_ID_CARD):
            resident = _resident_id(certno, today)
            if isinstance(resident, Refusal):
                return resident
            certno = resident
        else:
            certno = lookup_form(certno)
        if len(certno) > 18:
            return Refusal("certno", "settlement_record_invalid", "certno 超过 18 个字符")
    insutype, med_type = texts["insutype"], texts["med_type"]
    if insutype is not None and insutype not in INSUTYPES:
        return Refusal("insutype", "settlement_code_invalid", f"insutype 不是医保险种代码：{insutype[:20]}")
    if med_type is not None and med_type not in MED_TYPES:
        return Refusal("med_type", "settlement_code_invalid", f"med_type 不是医疗类别代码：{med_type[:20]}")
    days: dict[str, date | None] = {}
    for name in ("setl_time", "begndate", "enddate"):
        text = texts[name]
        if text is None:
            days[name] = None
            continue
        day = _day(text, name)
        if isinstance(day, Refusal):
            return day
        days[name] = day
    begun, ended = days["begndate"], days["enddate"]
    if begun is not None and ended is not None and ended < begun:
        return Refusal("enddate", "settlement_date_invalid", f"出院日期 enddate {ended} 早于入院日期 begndate {begun}")
    if bad:
        return Refusal(bad[0][0], "settlement_amount_invalid",
                       "以下字段不是金额：" + "、".join(f"{n}（{why}）" for n, why in bad))
    if not _identities_hold(amounts):
        implausible = check_settlement(amounts)
        return Refusal(implausible[0].field, "settlement_implausible", implausible_message(implausible),
                       [p.as_error() for p in implausible])
    return Checked(setl_id=setl_id, certno=certno, mdtrt_id=mdtrt_id, insutype=insutype, med_type=med_type,
                   setl_date=days["setl_time"], medfee_sumamt=amounts.get("medfee_sumamt"),
                   psn_part_amt=amounts.get("psn_part_amt"), reversal=reversal)
