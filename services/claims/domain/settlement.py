"""Is a settlement plausible? Pure checks of the national settlement fields (reference: 国家医保信息平台
2304/2207 ``setlinfo``), shared by claims and the bureau feeds: no I/O.

The platform's totals are expected to add up (the reference lists the identities; they are not guaranteed
by the interface, so each holds within one fen or the record is refused, with the difference named):

- ``medfee_sumamt = fund_pay_sumamt + psn_part_amt (+ hosp_part_amt)``: the bill is what the funds paid plus
  what the person bore (plus what the hospital bore, where sent);
- ``fund_pay_sumamt = hifp_pay + cvlserv_pay + hifes_pay + hifmi_pay + hifob_pay + maf_pay + oth_pay``;
- ``psn_part_amt = acct_pay + psn_cash_pay``;
- and what is fully self-paid is part of what the person bore: ``fulamt_ownpay_amt <= psn_part_amt``.

An identity is checked when its total and its parts were sent: the first needs all three totals
(``hosp_part_amt`` counts as zero when absent); the second and third need at least one of their parts (a claim
typed in by a unit agent often carries only the three totals), parts not sent counting as zero. A reversal carries the same figures negated, so the comparison of the self-paid part uses sizes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from shared.money import format_money

TOLERANCE = Decimal("0.01")
LIMIT = Decimal("1e14")  # decimal(16,2): the platform's amounts have at most 14 digits before the point
FUND_PARTS = ("hifp_pay", "cvlserv_pay", "hifes_pay", "hifmi_pay", "hifob_pay", "maf_pay", "oth_pay")
PERSON_PARTS = ("acct_pay", "psn_cash_pay")


@dataclass(frozen=True)
class Implausible:
    """One identity that does not hold: ``field`` is the total, ``expected`` what its parts add up to."""

    code: str
    field: str
    actual: Decimal
    expected: Decimal
    message: str

    @property
    def difference(self) -> Decimal:
        return self.actual - self.expected

    def as_error(self, loc_prefix: tuple[str | int, ...] = ()) -> dict[str, object]:
        return {"loc": [*loc_prefix, self.field], "msg": self.message, "code": self.code,
                "actual": format_money(self.actual), "expected": format_money(self.expected),
                "difference": format_money(self.difference)}


def _sum(amounts: Mapping[str, Decimal], names: tuple[str, ...]) -> Decimal:
    return sum((amounts.get(name, Decimal("0")) for name in names), Decimal("0"))


def check_settlement(amounts: Mapping[str, Decimal]) -> list[Implausible]:
    """Every identity that fails, in the order of the reference; an empty list for a plausible settlement."""
    found: list[Implausible] = []
    medfee, fund, person = (amounts.get(n) for n in ("medfee_sumamt", "fund_pay_sumamt", "psn_part_amt"))
    if medfee is not None and fund is not None and person is not None:
        parts = ("fund_pay_sumamt", "psn_part_amt", "hosp_part_amt")
        expected = _sum(amounts, parts)
        if abs(medfee - expected) > TOLERANCE:
            named = " + ".join(n for n in parts if n in amounts)
            found.append(Implausible(
                "settlement_total_mismatch", "medfee_sumamt", medfee, expected,
                f"医疗费总额 medfee_sumamt {format_money(medfee)} 不等于 {named} 之和 {format_money(expected)}，"
                f"相差 {format_money(medfee - expected)}。"))
    # A total and its parts (docs/SETTLEMENT.md): checked when the total and at least one part were sent.
    checks: tuple[tuple[str, str, Decimal | None, tuple[str, ...], str], ...] = (
            ("settlement_fund_parts_mismatch", "fund_pay_sumamt", fund, FUND_PARTS,
             "基金支付总额 fund_pay_sumamt {total} 不等于各项基金支付之和 {expected}"),
            ("settlement_person_parts_mismatch", "psn_part_amt", person, PERSON_PARTS,
             "个人负担总额 psn_part_amt {total} 不等于个人账户支付 acct_pay 与现金支付 psn_cash_pay 之和 {expected}"))
    for code, field, total, summands, label in checks:
        if total is None or not any(n in amounts for n in summands):
            continue
        expected = _sum(amounts, summands)
        if abs(total - expected) > TOLERANCE:
            found.append(Implausible(
                code, field, total, expected,
                label.format(total=format_money(total), expected=format_money(expected))
                + f"，相差 {format_money(total - expected)}。"))
    own = amounts.get("fulamt_ownpay_amt")
    if own is not None and person is not None and abs(own) > abs(person):
        found.append(Implausible(
            "settlement_ownpay_exceeds_person", "fulamt_ownpay_amt", own, person,
            f"全自费金额 fulamt_ownpay_amt {format_money(own)} 超过个人负担总额 psn_part_amt "
            f"{format_money(person)}，超出 {format_money(abs(own) - abs(person))}。"))
    return found


def message(problems: list[Implausible]) -> str:
    return "结算数据不合逻辑，未受理：" + "；".join(p.message.rstrip("。") for p in problems) + "。"


def is_amount(value: Decimal) -> bool:
    """Finite and within decimal(16,2)."""
    return value.is_finite() and abs(value) < LIMIT


def amounts_of(record: Mapping[str, object]) -> tuple[dict[str, Decimal], list[str]]:
    """The money fields of a raw record (a bureau's JSON) as Decimals, and the names of those that are not
    amounts (text that does not parse, NaN, infinities, booleans)."""
    names = ("medfee_sumamt", "fund_pay_sumamt", "psn_part_amt", "hosp_part_amt", "fulamt_ownpay_amt",
             *FUND_PARTS, *PERSON_PARTS)
    out: dict[str, Decimal] = {}
    bad: list[str] = []
    for name in names:
        value = record.get(name)
        if value is None or value == "":
            continue
        if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
            bad.append(name)
            continue
        try:
            amount = Decimal(str(value).strip())
        except ArithmeticError:
            bad.append(name)
            continue
        if not is_amount(amount):
            bad.append(name)
            continue
        out[name] = amount
    return out, bad
