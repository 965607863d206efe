"""Roster checks against the period's rulebook: pure, no I/O (the API gathers the facts and calls these).

A roster is refused whole when any check fails, with every problem listed by row (row 1 = first member).
Sources: seed 003 (云南 第一条 参互条件与比例, 第四条 交费标准, 第五条 交费时限), seed 001 (运城).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from stdnum.cn import ric
from stdnum.exceptions import ValidationError

from shared.rulebook import Rulebook

PHONE = re.compile(r"^1[3-9]\d{9}$")
INSURANCE_KINDS = ("basic_medical", "critical_illness_supplement")


@dataclass(frozen=True)
class RosterMember:
    name: str
    certno: str
    phone: str
    sex: str
    member_type: str
    bank_account: str
    bank_name: str
    insurance: tuple[str, ...]
    plans: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Staff:
    total: int
    in_service: int
    basic_insured_in_service: int


@dataclass
class Findings:
    errors: list[dict[str, object]] = field(default_factory=list)
    warnings: list[dict[str, object]] = field(default_factory=list)

    def error(self, loc: list[object], msg: str, code: str) -> None:
        self.errors.append({"loc": loc, "msg": msg, "code": code})

    def warn(self, loc: list[object], msg: str, code: str) -> None:
        self.warnings.append({"loc": loc, "msg": msg, "code": code})


CERTNO_SHAPE = re.compile(r"^\d{17}[\dX]$")


@functools.lru_cache(maxsize=65536)
def _birth_date_ok(yyyymmdd: str) -> bool:
    try:
        born = date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:]))
    except ValueError:
        return False
    return date(1900, 1, 1) <= born <= date.today()


@functools.lru_cache(maxsize=65536)
def _region_ok(region: str, year: str) -> bool:
    """Was this administrative division code in use in the year of birth (python-stdnum's GB/T 2260 table)?"""
    try:
        ric.get_birth_place(f"{region}{year}0101000")
    except ValidationError:
        return False
    return True


def certno_ok(certno: str) -> bool:
    """GB 11643 resident ID: shape, check digit, birth date, and the birth place known for that year.

    The same checks as python-stdnum's ``cn.ric.validate``, with the date and region look-ups cached: a
    provincial roster has 200,000 rows but only a few thousand distinct birth dates and regions."""
    return (CERTNO_SHAPE.match(certno) is not None and ric.calc_check_digit(certno) == certno[-1]
            and _birth_date_ok(certno[6:14]) and _region_ok(certno[:6], certno[6:10]))


_LUHN_DOUBLED = {str(d): (2 * d - 9 if d > 4 else 2 * d) for d in range(10)}


def luhn_ok(digits: str) -> bool:
    """Luhn (ISO/IEC 7812) check of a bank card number: every second digit from the right is doubled."""
    if not digits.isdigit():
        return False
    total = sum(map(int, digits[-1::-2])) + sum(map(_LUHN_DOUBLED.__getitem__, digits[-2::-2]))
    return total % 10 == 0


def check_roster(
    rulebook: Rulebook,
    staff: Staff,
    members: Sequence[RosterMember],
    *,
    today: date,
    enrolled_elsewhere: set[str],
    previous_members: set[str] | None = None,
) -> Findings:
    """Every problem with a roster. ``enrolled_elsewhere``: certnos already holding a share this period;
    ``previous_members``: certnos covered in the previous period, or None when that period is not in the system."""
    found = Findings()
    window = rulebook.windows.enrolment
    if not window.from_ <= today <= window.to:  # 第五条: late enrolment is not accepted
        found.error(["window"], f"不在本期参互登记时间内（{window.from_} 至 {window.to}）。", "outside_enrolment_window")
    if not members:
        found.error(["members"], "名单为空。", "empty_roster")
    allowed_types = set(rulebook.enrolment.member_types)
    required = set(rulebook.enrolment.requires_insurance)
    plan_codes = {p.code for p in rulebook.plans}
    seen: dict[str, int] = {}
    for row, member in enumerate(members, start=1):
        loc: list[object] = ["members", row]
        certno = member.certno.strip().upper()
        if not certno_ok(certno):
            found.error([*loc, "certno"], f"第{row}行：身份证号码无效（校验位或出生日期错误）。", "invalid_certno")
        if certno in seen:
            found.error([*loc, "certno"], f"第{row}行：与第{seen[certno]}行是同一人（每人限一份）。", "duplicate_person")
        else:
            seen[certno] = row
        if certno in enrolled_elsewhere:
            found.error([*loc, "certno"], f"第{row}行：此人本期已在其他名单中参互（每人限一份）。", "already_enrolled")
        if not member.name.strip() or len(member.name) > 100:
            found.error([*loc, "name"], f"第{row}行：姓名不能为空，也不能超过 100 个字。", "invalid_name")
        if not member.bank_name.strip() or len(member.bank_name) > 100:
            found.error([*loc, "bank_name"], f"第{row}行：开户银行不能为空，也不能超过 100 个字。", "invalid_bank_name")
        if not PHONE.match(member.phone):
            found.error([*loc, "phone"], f"第{row}行：手机号码应为 11 位。", "invalid_phone")
        if member.member_type not in allowed_types:  # 第一条 / 运城: in-service only
            found.error([*loc, "member_type"], f"第{row}行：本期不接受此人员类别（{member.member_type}）。",
                        "member_type_not_allowed")
        if rulebook.enrolment.retirees_must_renew and member.member_type == "retired":
            # 第一条 (from the 19th period): a retiree who skipped the previous period may not join again.
            if previous_members is None:
                found.warn([*loc, "member_type"], f"第{row}行：系统中没有上一期的参互记录，无法核对退休人员是否连续参互，请人工核对。",
                           "retiree_renewal_unverified")
            elif certno not in previous_members:
                found.error([*loc, "member_type"], f"第{row}行：退休人员上一期未参互，本期不能再加入。", "retiree_not_renewing")
        missing = required - set(member.insurance)
        if missing:  # 第一条: basic medical and critical-illness supplement both required
            found.error([*loc, "insurance"], f"第{row}行：未参加必需的保险：{'、'.join(sorted(missing))}。",
                        "required_insurance_missing")
        if member.plans is not None and set(member.plans) - plan_codes:
            found.error([*loc, "plans"], f"第{row}行：本期没有这些互助项目：{'、'.join(set(member.plans) - plan_codes)}。",
                        "unknown_plan")
        if not member.bank_account.isdigit() or not 10 <= len(member.bank_account) <= 30:
            found.error([*loc, "bank_account"], f"第{row}行：银行账号应为 10-30 位数字。", "invalid_bank_account")
        elif not luhn_ok(member.bank_account):  # passbook accounts fail Luhn: a warning only
            found.warn([*loc, "bank_account"], f"第{row}行：银行账号未通过 Luhn 校验，请核对（存折账号可忽略）。",
                       "bank_account_luhn")
    _check_participation(rulebook, staff, members, found)
    return found


def _check_participation(rulebook: Rulebook, staff: Staff, members: Sequence[RosterMember], found: Findings) -> None:
    """第一条: in-service participants / the rulebook's denominator >= min_ratio; small units 100%."""
    rule = rulebook.enrolment.participation
    denominator = staff.basic_insured_in_service if rule.denominator == "basic_insured_in_service" else staff.in_service
    if denominator <= 0:
        found.error(["staff", rule.denominator], "在职职工人数必须大于 0。", "invalid_staff_count")
        return
    in_service = sum(1 for m in members if m.member_type == "in_service")
    min_ratio = rule.small_unit.min_ratio if staff.total <= rule.small_unit.max_staff else rule.min_ratio
    if Decimal(in_service) / Decimal(denominator) < min_ratio:
        found.error(["staff"], f"在职参互人数 {in_service} 未达到 {denominator} 人的 {min_ratio:.0%}。",
                    "participation_ratio_too_low")
