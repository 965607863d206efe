"""What the bureau's settlement record says about a claim (issue #12 items 3 and 6), pure: no I/O. Intake
(domain/intake.screen) refuses a claim with the exclusion its med_type shows when the rulebook lists it
(``RULEBOOK_KEY``); the unclaimed list shows it.

``exclusion(record)``: the refusal a record shows by itself, 第十二条:

- ``excluded_outpatient`` (第十二条第四款: 特殊病、慢性病、急诊及急诊留观等门诊结算的医疗费用不予补助): an
  outpatient settlement, ``med_type`` 11 普通门诊, 12 门诊挂号, 13 急诊, 14 门诊慢特病, 15 特药, 19 其他门诊, and
  41 定点药店购药 (a pharmacy purchase is no hospital stay either);
- ``excluded_maternity`` (第十二条第三款: 基本医疗保险不予支付的情况，如……女职工生育): ``med_type`` 51 生育门诊,
  52 生育住院, 53 计划生育手术;
- ``excluded_work_injury`` (第十二条第三款: ……工伤): the national 2304/5203 fields carry no work-injury marker
  (work injury is settled by 工伤保险, outside medical insurance); a region that books it under a local
  ``med_type`` names those codes, passed as ``work_injury_med_types`` (from the plan's rulebook). Without them no
  record is refused as work injury: the reviewer still sees the diagnosis.

A trauma stay (22 外伤住院) is not excluded by the record alone: third-party liability (第十二条第三款) needs
the facts of the accident, which the record does not hold.

``compare(typed, record)``: where what a submitter typed differs from what the bureau sent, field by field.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from shared.money import format_money


class Exclusion(StrEnum):
    OUTPATIENT = "excluded_outpatient"
    MATERNITY = "excluded_maternity"
    WORK_INJURY = "excluded_work_injury"


OUTPATIENT_MED_TYPES = frozenset({"11", "12", "13", "14", "15", "19", "41"})
MATERNITY_MED_TYPES = frozenset({"51", "52", "53"})
ARTICLE = {Exclusion.OUTPATIENT: "第十二条第四款", Exclusion.MATERNITY: "第十二条第三款",
           Exclusion.WORK_INJURY: "第十二条第三款"}
#: The rulebook's name (``exclusions:``, 第十二条) under which each exclusion applies.
RULEBOOK_KEY = {Exclusion.OUTPATIENT: "outpatient", Exclusion.MATERNITY: "not_paid_by_basic_insurance",
                Exclusion.WORK_INJURY: "not_paid_by_basic_insurance"}
REASON = {Exclusion.OUTPATIENT: "门诊（含特殊病、慢性病、急诊）结算的医疗费用不予补助",
          Exclusion.MATERNITY: "女职工生育的医疗费用不予补助",
          Exclusion.WORK_INJURY: "工伤的医疗费用不予补助"}

MONEY_FIELDS = ("medfee_sumamt", "fund_pay_sumamt", "psn_part_amt", "hosp_part_amt", "fulamt_ownpay_amt",
                "overlmt_selfpay", "preselfpay_amt", "inscp_scp_amt", "act_pay_dedc", "hifp_pay", "cvlserv_pay",
                "hifes_pay", "hifmi_pay", "hifob_pay", "maf_pay", "oth_pay", "acct_pay", "psn_cash_pay")
TEXT_FIELDS = ("setl_id", "mdtrt_id", "certno", "insutype", "med_type", "begndate", "enddate", "fixmedins_code")


def _code(value: Any) -> str:
    return str(value).strip() if value is not None else ""


def exclusion(record: Mapping[str, Any], work_injury_med_types: Collection[str] = ()) -> Exclusion | None:
    """The 第十二条 refusal the record shows, or None (see the module's docstring)."""
    med_type = _code(record.get("med_type"))
    if med_type in work_injury_med_types:
        return Exclusion.WORK_INJURY
    if med_type in MATERNITY_MED_TYPES:
        return Exclusion.MATERNITY
    if med_type in OUTPATIENT_MED_TYPES:
        return Exclusion.OUTPATIENT
    return None


def _amount(value: Any) -> Decimal | None:
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return amount if amount.is_finite() else None


def compare(typed: Mapping[str, Any], record: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """Each field both carry whose values differ: money as ``{typed, bureau, difference}`` (typed minus
    bureau, to the fen: the same settlement has the same figures), codes and ids as ``{typed, bureau}``
    (a lower-case x in an ID number is no difference). A field only one side carries is not compared: the
    claim is assessed on the bureau's figure."""
    differences: dict[str, dict[str, str]] = {}
    for name in MONEY_FIELDS:
        mine, theirs = _amount(typed.get(name)), _amount(record.get(name))
        if mine is not None and theirs is not None and mine != theirs:
            differences[name] = {"typed": format_money(mine), "bureau": format_money(theirs),
                                 "difference": format_money(mine - theirs)}
    for name in TEXT_FIELDS:
        mine_text, theirs_text = _code(typed.get(name)), _code(record.get(name))
        if mine_text and theirs_text and mine_text.upper() != theirs_text.upper():
            differences[name] = {"typed": mine_text, "bureau": theirs_text}
    return differences
