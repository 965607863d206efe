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

from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from services.claims.domain.settlement import amounts_of, check_settlement, is_amount
from services.claims.domain.settlement import message as implausible_message
from shared.idnumber import IdNumberError, lookup_form, parse

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


@dataclass(frozen=True, slots=True)
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


def _text(record: Mapping[str, Any], name: str) -> str | Refusal | None:
    value = record.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        return Refusal(name, "settlement_record_invalid", f"{name} 必须是文本")
    text = str(value).strip()
    return text or None


def _day(value: str, name: str) -> date | Refusal:
    try:
        if len(value) <= 10:
            return date.fromisoformat(value.replace("/", "-")) if len(value) == 10 else \
                datetime.strptime(value, "%Y%m%d" if value.isdigit() else "%Y-%m-%d").date()
        return datetime.fromisoformat(value.replace("/", "-")).date()
    except ValueError:
        return Refusal(name, "settlement_date_invalid", f"{name} 不是有效的日期时间（应为 yyyy-MM-dd HH:mm:ss）：{value[:40]}")


def check_record(record: Mapping[str, Any]) -> Checked | Refusal:
    """The record as kept, or the first reason it cannot be (in the order of the fields above)."""
    setl_id = _text(record, "setl_id")
    if isinstance(setl_id, Refusal):
        return setl_id
    if setl_id is None:
        return Refusal("setl_id", "settlement_field_missing", "缺少 setl_id（结算 ID）")
    mdtrt_id = _text(record, "mdtrt_id")
    if isinstance(mdtrt_id, Refusal):
        return mdtrt_id
    for name, value, longest in (("setl_id", setl_id, 60), ("mdtrt_id", mdtrt_id, 60)):
        if value is not None and len(value) > longest:
            return Refusal(name, "settlement_record_invalid", f"{name} 超过 {longest} 个字符")
    reversal = is_reversal(record)
    texts: dict[str, str | None] = {}
    for name in ("certno", "insutype", "med_type", "setl_time", "psn_cert_type", "begndate", "enddate"):
        text = _text(record, name)
        if isinstance(text, Refusal):
            return text
        texts[name] = text
    if not reversal:
        for name in REQUIRED:
            if texts.get(name) is None and record.get(name) in (None, ""):
                return Refusal(name, "settlement_field_missing", f"缺少 {name}")
    certno = texts["certno"]
    if certno is not None:
        if texts["psn_cert_type"] in (None, RESIDENT_ID_CARD):
            try:
                certno = parse(certno).number
            except IdNumberError as exc:
                return Refusal("certno", "invalid_certno", f"certno：{exc.message}")
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
    amounts, not_amounts = amounts_of(record)
    if not_amounts:
        return Refusal(not_amounts[0], "settlement_amount_invalid", "以下字段不是金额：" + "、".join(not_amounts))
    for name, value in record.items():  # the national money fields beyond those the identities use
        if name not in amounts and name.endswith(("_amt", "_pay", "_sumamt")) and value not in (None, ""):
            if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
                return Refusal(name, "settlement_amount_invalid", f"{name} 不是金额")
            try:
                extra = Decimal(str(value).strip())
            except InvalidOperation:
                return Refusal(name, "settlement_amount_invalid", f"{name} 不是金额")
            if not is_amount(extra):
                return Refusal(name, "settlement_amount_invalid", f"{name} 不是金额")
            amounts[name] = extra
    for name, amount in amounts.items():
        exponent = amount.as_tuple().exponent
        if isinstance(exponent, int) and exponent < -2 and amount != amount.quantize(Decimal("0.01")):
            return Refusal(name, "settlement_amount_invalid", f"{name}：金额最多两位小数")
    implausible = check_settlement(amounts)
    if implausible:
        return Refusal(implausible[0].field, "settlement_implausible", implausible_message(implausible),
                       [p.as_error() for p in implausible])
    return Checked(setl_id=setl_id, certno=certno, mdtrt_id=mdtrt_id, insutype=insutype, med_type=med_type,
                   setl_date=days["setl_time"], medfee_sumamt=amounts.get("medfee_sumamt"),
                   psn_part_amt=amounts.get("psn_part_amt"), reversal=reversal)
