"""Roster checks against the period's rulebook: pure, no I/O (the API gathers the facts and calls these).

A roster is refused whole when any check fails, with every problem listed by row. A row is named as its
sender sees it: ``loc = ["members", i, field]`` with i the 0-based index of the member in the roster, and
in the Chinese message 第N条 (N = i + 1) for a JSON roster, or 第N行 with ``line`` = N, the line Excel shows
(header = line 1), for a CSV/XLSX file.
Sources: seed 003 (云南 第一条 参互条件与比例, 第四条 交费标准, 第五条 交费时限), seed 001 (运城), seed 002 (北京:
plans by sex and shares per row in `check_roster`; the roster's payers `check_payers`, `split_fee`; a row's fee
`member_fee`).
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal

import polars as pl

from services.enrollment.domain import roster_columns
from shared import idnumber
from shared.money import to_fen
from shared.rulebook import RetirementAge, Rulebook

PHONE = re.compile(r"^1[3-9][0-9]{9}$")  # fullmatch, ASCII: not ０-９, not a trailing line break
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
    line: int | None = field(default=None, compare=False)  # the spreadsheet line of a file's row (header = 1)
    shares: int = 1  # seed 002 "多买几份": how many shares of each plan with a fee the member buys


@dataclass(frozen=True)
class Staff:
    total: int
    in_service: int
    basic_insured_in_service: int
    as_of: date | None = None  # the day the unit counted its staff (rulebook `headcount_as_of`, seed 001)


@dataclass
class Findings:
    errors: list[dict[str, object]] = field(default_factory=list)
    warnings: list[dict[str, object]] = field(default_factory=list)

    def error(self, loc: list[object], msg: str, code: str, **extra: object) -> None:
        self.errors.append({"loc": loc, "msg": msg, "code": code, **extra})

    def warn(self, loc: list[object], msg: str, code: str, **extra: object) -> None:
        self.warnings.append({"loc": loc, "msg": msg, "code": code, **extra})

    def row_error(self, index: int, member: RosterMember, name: str, msg: str, code: str, **extra: object) -> None:
        """A problem of one row: ``msg`` is prefixed with the row as its sender sees it (第N行 / 第N条)."""
        self.errors.append(row_problem(index, member, name, msg, code, **extra))

    def row_warning(self, index: int, member: RosterMember, name: str, msg: str, code: str) -> None:
        self.warnings.append(row_problem(index, member, name, msg, code))


def row_label(index: int, member: RosterMember) -> str:
    """How a person finds the row: 第N行 (the spreadsheet line) in a file, 第N条 (1-based) in a JSON list."""
    return f"第{member.line}行" if member.line is not None else f"第{index + 1}条"


def row_problem(index: int, member: RosterMember, name: str, msg: str, code: str,
                **extra: object) -> dict[str, object]:
    problem: dict[str, object] = {"loc": ["members", index, name], "msg": f"{row_label(index, member)}：{msg}",
                                  "code": code, **extra}
    if member.line is not None:
        problem["line"] = member.line
    return problem


def stored_certno(certno: str) -> str:
    """The form a roster's ID number is stored and matched in: a 15-digit number as its 18-digit form."""
    return idnumber.upgrade_15(certno) if len(certno) == 15 and certno.isdigit() else certno


_LUHN_DOUBLED = {str(d): (2 * d - 9 if d > 4 else 2 * d) for d in range(10)}


def luhn_ok(digits: str) -> bool:
    """Luhn (ISO/IEC 7812) check of a bank card number: every second digit from the right is doubled."""
    if not (digits.isascii() and digits.isdigit()):  # a full-width digit is no card number (and no KeyError)
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
    by_rows: bool = False,
) -> Findings:
    """Every problem with a roster. ``enrolled_elsewhere``: certnos (18-digit form) already holding a share this
    period; ``previous_members``: certnos covered in the previous period, or None when that period is not in the
    system. ID numbers are read as ``shared.idnumber`` reads them: a 15-digit number is checked as its 18-digit
    form (and a warning says so), an unknown region code is a warning."""
    found = Findings()
    _check_headcount_day(rulebook, staff, today, found)
    ages = rulebook.enrolment.retirement_age
    # 运城 "不包括达到法定退休年龄的人员": reached by the later of today and the start of cover.
    retirement_check_day = max(today, rulebook.windows.coverage.from_)
    window = rulebook.windows.enrolment
    if not window.from_ <= today <= window.to:  # 第五条: late enrolment is not accepted
        found.error(["window"], f"不在本期参互登记时间内（{window.from_} 至 {window.to}）。", "outside_enrolment_window")
    if not members:
        found.error(["members"], "名单为空。", "empty_roster")
    allowed_types = set(rulebook.enrolment.member_types)
    required = set(rulebook.enrolment.requires_insurance)
    plan_codes = {p.code for p in rulebook.plans}
    error, warn = found.row_error, found.row_warning
    # A plan for one sex (seed 002/004) goes by the sex the ID number gives (its 17th digit), not the row's.
    by_number = list(members)
    by_sex = {p.code for p in rulebook.plans if getattr(getattr(p, "eligible", None), "sex", None) is not None}
    # The columns first (roster_columns, polars): the row check below runs only for the rows they do not find
    # plainly sound, and says exactly what it always said about them. ``by_rows`` checks every row (tests).
    if by_rows:
        to_check: Sequence[int] = range(len(members))
    else:
        born_by = None
        if ages is not None:
            born_by = {sex: _latest_retired_birth(getattr(ages, sex), ages.reform_from, retirement_check_day)
                       for sex in ("male", "female")}
        to_check = roster_columns.rows_to_check(
            members, today=today, allowed_types=allowed_types, enrolled_elsewhere=enrolled_elsewhere,
            retirees_need=previous_members, renewal_rule=rulebook.enrolment.retirees_must_renew,
            sex_matters=bool(by_sex), born_by=born_by, required_insurance=required, plan_codes=plan_codes)
    # A row checked one by one is read once here: its number's stored form says who the row is.
    parsed: dict[int, idnumber.IdNumber | idnumber.IdNumberError] = {}
    keys = [m.certno for m in members]  # a plainly sound row's number is its stored form
    for index in to_check:
        member = members[index]
        try:
            parsed[index] = read = idnumber.parse(member.certno, today=today)
        except idnumber.IdNumberError as refused:
            parsed[index] = refused
            keys[index] = member.certno.strip().upper()
        else:
            keys[index] = read.number
    first_of = _first_rows(keys)
    if first_of:  # the later rows of one person are named, whatever the columns found
        to_check = sorted({*to_check, *(i for i, key in enumerate(keys) if first_of.get(key, i) != i)})
    for index in to_check:
        member = members[index]
        result = parsed.get(index)
        if result is None:
            try:
                result = idnumber.parse(member.certno, today=today)
            except idnumber.IdNumberError as refused:
                result = refused
        if isinstance(result, idnumber.IdNumberError):
            error(index, member, "certno", f"{result.message}。", "invalid_certno", reason=result.problem.value)
            certno = member.certno.strip().upper()
        else:
            certno, born, sex, region_known, converted_from = result
            if sex != member.sex and not by_sex.isdisjoint(_joined(rulebook, member)):
                by_number[index] = replace(member, sex=sex)
                warn(index, member, "sex", f"性别与身份证号码不符：号码第 17 位表明此人为{_SEX_NAMES[sex]}，按号码认定。",
                     "sex_differs_from_certno")
            if ages is not None and member.member_type == "in_service":
                retires = retirement_day(born, getattr(ages, sex), ages.reform_from)
                if retires <= retirement_check_day:
                    error(index, member, "certno", f"此人（{born.year}年{born.month}月出生，{_SEX_NAMES[sex]}）已于 "
                          f"{retires} 达到法定退休年龄，不能作为在职职工参加。", "past_retirement_age",
                          retires_on=retires.isoformat())
            if converted_from is not None:
                warn(index, member, "certno", f"15 位身份证号码 {converted_from} 已转换为 18 位 {certno}，"
                     "按 18 位保存和显示。", "certno_converted_from_15")
            if not region_known:
                warn(index, member, "certno", f"身份证号码前 6 位地区码 {certno[:6]} 不在行政区划代码表（GB/T 2260 "
                     "历年代码）中，请核对号码。", "certno_region_unknown")
        first = first_of.get(certno, index)
        if first != index:
            error(index, member, "certno", f"与{row_label(first, members[first])}是同一人（每人限一份）。",
                  "duplicate_person")
        if certno in enrolled_elsewhere:
            error(index, member, "certno", "此人本期已在其他名单中参互（每人限一份）。", "already_enrolled")
        if not member.name.strip() or len(member.name) > 100:
            error(index, member, "name", "姓名不能为空，也不能超过 100 个字。", "invalid_name")
        if not member.bank_name.strip() or len(member.bank_name) > 100:
            error(index, member, "bank_name", "开户银行不能为空，也不能超过 100 个字。", "invalid_bank_name")
        if not PHONE.fullmatch(member.phone):
            error(index, member, "phone", "手机号码应为 11 位。", "invalid_phone")
        if member.member_type not in allowed_types:  # 第一条 / 运城: in-service only
            error(index, member, "member_type", f"本期不接受此人员类别（{member.member_type}）。",
                  "member_type_not_allowed")
        if rulebook.enrolment.retirees_must_renew and member.member_type == "retired":
            # 第一条 (from the 19th period): a retiree who skipped the previous period may not join again.
            if previous_members is None:
                warn(index, member, "member_type", "系统中没有上一期的参互记录，无法核对退休人员是否连续参互，请人工核对。",
                     "retiree_renewal_unverified")
            elif certno not in previous_members:
                error(index, member, "member_type", "退休人员上一期未参互，本期不能再加入。", "retiree_not_renewing")
        missing = required - set(member.insurance)
        if missing:  # 第一条: basic medical and critical-illness supplement both required
            error(index, member, "insurance", f"未参加必需的保险：{'、'.join(sorted(missing))}。",
                  "required_insurance_missing")
        if member.plans is not None and set(member.plans) - plan_codes:
            error(index, member, "plans", f"本期没有这些互助项目：{'、'.join(set(member.plans) - plan_codes)}。",
                  "unknown_plan")
        if not (member.bank_account.isascii() and member.bank_account.isdigit()) \
                or not 10 <= len(member.bank_account) <= 30:  # full-width digits too are refused, never stored
            error(index, member, "bank_account", "银行账号应为 10-30 位数字。", "invalid_bank_account")
        elif not luhn_ok(member.bank_account):  # passbook accounts fail Luhn: a warning only
            warn(index, member, "bank_account", "银行账号未通过 Luhn 校验，请核对（存折账号可忽略）。", "bank_account_luhn")
    # seed 002: a women's plan takes no man; several shares up to `shares_per_member` (per row).
    shares = [m.shares for m in members]
    if by_sex or any(count != 1 for count in shares):  # nothing to check otherwise (a large roster's common case)
        found.errors.extend(check_plan_rows(rulebook, by_number, shares).errors)
    found.errors.sort(key=_problem_order)
    _check_participation(rulebook, staff, members, found)
    return found


def _first_rows(keys: Sequence[str]) -> dict[str, int]:
    """Of each number on more than one row, the index of its first row (polars finds the repeated ones)."""
    repeated = pl.Series(keys, dtype=pl.String).is_duplicated()
    if not repeated.any():
        return {}
    first: dict[str, int] = {}
    for index in repeated.arg_true().to_list():
        first.setdefault(keys[index], index)
    return first


def _latest_retired_birth(rule: RetirementAge, reform_from: date | None, day: date) -> date:
    """The latest birth date whose holder has reached the retirement age by ``day`` (retirement_day <= day).
    retirement_day never decreases as the birth date moves later, so a binary search over the days finds it
    (1899-12-31 when nobody born from 1900 on has)."""
    low, high = idnumber.EARLIEST_BIRTH.toordinal() - 1, day.toordinal()  # low: retired (sentinel); high: not
    if retirement_day(date.fromordinal(high), rule, reform_from) <= day:
        return date.fromordinal(high)
    while high - low > 1:
        middle = (low + high) // 2
        if retirement_day(date.fromordinal(middle), rule, reform_from) <= day:
            low = middle
        else:
            high = middle
    return date.fromordinal(low)


def _problem_order(problem: dict[str, object]) -> float:
    """The roster as a whole (window, empty) first, then row by row (a row's problems in the order found)."""
    loc = problem["loc"]
    assert isinstance(loc, list)
    if len(loc) > 1 and loc[0] == "members" and isinstance(loc[1], int):
        return loc[1]
    return -1 if loc and loc[0] in ("window", "members") else float("inf")


def _month_day(text: str, year: int) -> date:
    month, day = map(int, text.split("-"))
    return date(year, month, 28 if (month, day) == (2, 29) and year % 4 else day)


def headcount_day(month_day: str, today: date) -> date:
    """The day a roster's staff counts must be of under `headcount_as_of` (seed 001 "人数以当年5月31日人数为准"):
    this year's such day, or last year's while this year's is still ahead."""
    this_year = _month_day(month_day, today.year)
    return this_year if this_year <= today else _month_day(month_day, today.year - 1)


def _check_headcount_day(rulebook: Rulebook, staff: Staff, today: date, found: Findings) -> None:
    month_day = rulebook.enrolment.headcount_as_of
    if month_day is None:
        return
    due = headcount_day(month_day, today)
    if staff.as_of is None:
        found.error(["staff", "as_of"], f"请填写职工人数的统计日期（本期以 {due} 的在册人数为准）。", "headcount_date_missing",
                    expected=due.isoformat())
    elif staff.as_of != due:
        found.error(["staff", "as_of"], f"职工人数应为 {due} 的在册人数，而不是 {staff.as_of} 的。", "headcount_date_wrong",
                    expected=due.isoformat())


def _add_months(day: date, months: int) -> date:
    """The same day ``months`` later; a day the month lacks (31 April) becomes its last day."""
    year, month = divmod(day.month - 1 + months, 12)
    year += day.year
    return date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


def retirement_day(born: date, rule: RetirementAge, reform_from: date | None) -> date:
    """The day someone born on ``born`` reaches the legal retirement age ``rule`` gives. Before the reform: born
    + ``age`` years. From ``reform_from`` (2025-01-01, 全国人大常委会 2024-09-13 决定): one month more for each
    ``months_per_step`` months (started) that the original retirement month lies after the reform's month, up to
    ``raised_to`` years: a man born in January-April 1965 retires at 60 and 1 month, one born in September
    1976 or later at 63 (the decision's table)."""
    original = _add_months(born, rule.age * 12)
    if rule.raised_to is None or reform_from is None or \
            (original.year, original.month) < (reform_from.year, reform_from.month):
        return original
    months_after = (original.year - reform_from.year) * 12 + original.month - reform_from.month
    delay = min(months_after // rule.months_per_step + 1, (rule.raised_to - rule.age) * 12)
    return _add_months(born, rule.age * 12 + delay)


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


# --- plans, shares and payers (issue #16, seed 002) --------------------------------------------------------------

_SEX_NAMES = {"female": "女性", "male": "男性"}


def _joined(rulebook: Rulebook, member: RosterMember) -> tuple[str, ...]:
    if member.plans is not None:
        return member.plans
    return tuple(p.code for p in rulebook.plans_without_own_fee())


def check_plan_rows(rulebook: Rulebook, members: Sequence[RosterMember],
                    shares: Sequence[int] | None = None) -> Findings:
    """Per row: the plans a member may join, and how many shares.

    - A plan with `eligible.sex` takes only that sex: a man cannot join a women's plan (seed 002 "在职女职工特殊疾病
      互助保障计划", seed 004 "女性馨康互助保障 … 女职工"); refused by row, code ``plan_sex_mismatch``.
    - ``shares`` (aligned with ``members``; None means one share each): a whole number from 1 to
      `enrolment.shares_per_member` (seed 002 "自己是不是可以多买几份"); codes ``invalid_shares``, ``shares_above_limit``.
    """
    found = Findings()
    if shares is not None and len(shares) != len(members):
        raise ValueError(f"{len(shares)} share counts for {len(members)} members")
    by_sex = {p.code: (p.name, sex) for p in rulebook.plans
              if (sex := getattr(getattr(p, "eligible", None), "sex", None)) is not None}
    default = tuple(p.code for p in rulebook.plans_without_own_fee())
    limit = rulebook.enrolment.shares_per_member
    # A roster repeats a few (plans, sex) pairs: which of a pair's plans refuse that sex is worked out once.
    refused: dict[tuple[tuple[str, ...], str], list[tuple[str, str, str]]] = {}
    for index, member in enumerate(members):
        joined = member.plans if member.plans is not None else default
        key = (joined, member.sex)
        if key not in refused:
            refused[key] = [(code, *by_sex[code]) for code in joined
                            if code in by_sex and member.sex != by_sex[code][1]]
        for code, name, wanted in refused[key]:
            found.row_error(index, member, "plans",
                            f"{name}仅限{_SEX_NAMES[wanted]}参加，此人性别为{_SEX_NAMES.get(member.sex, member.sex)}。",
                            "plan_sex_mismatch", plan=code)
        if shares is None:
            continue
        count = shares[index]
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            found.row_error(index, member, "shares", f"份数应为不小于 1 的整数，不能是“{count}”。", "invalid_shares")
        elif count > limit:
            found.row_error(index, member, "shares", f"每人最多 {limit} 份，此行为 {count} 份。", "shares_above_limit",
                            limit=limit)
    return found


def member_fee(fee_per_share: Decimal, shares: int = 1) -> Decimal:
    """One member's fee for ``shares`` shares (seed 002 "多买几份"): the fee of one share times the shares."""
    if isinstance(shares, bool) or not isinstance(shares, int) or shares < 1:
        raise ValueError(f"shares must be a whole number >= 1, not {shares!r}")
    return to_fen(fee_per_share * shares)


def check_payers(rulebook: Rulebook, payers: Mapping[str, Decimal] | None) -> Findings:
    """A unit's choice of who pays its members' fees (seed 002 "费用交纳有5种方式 … 具体哪种方式由各单位根据情况自主
    研究确定"): each payer from `enrolment.payers_allowed`, each share a fraction above 0 and at most 1, the shares
    adding up to exactly 1. ``payers`` None: the rulebook's own split (or the member alone) applies."""
    found = Findings()
    if payers is None:
        return found
    allowed = rulebook.enrolment.payers_allowed
    if allowed is None:
        found.error(["payers"], "本期规则不允许单位自选付费方式。", "payers_not_allowed")
        return found
    if not payers:
        found.error(["payers"], "付费方不能为空。", "payers_empty")
        return found
    total = Decimal(0)
    for payer, share in payers.items():
        if payer not in allowed:
            found.error(["payers", payer], f"付费方 {payer} 不在本期允许的付费方之内（{'、'.join(allowed)}）。",
                        "payer_not_allowed")
        if isinstance(share, bool) or not isinstance(share, Decimal) or not share.is_finite() or not 0 < share <= 1:
            found.error(["payers", payer], f"付费比例应为大于 0、不超过 1 的小数，不能是“{share}”。", "invalid_payer_share")
            continue
        total += share
    if not found.errors and total != 1:
        found.error(["payers"], f"各付费方比例之和应为 1，现为 {total}。", "payer_shares_not_one")
    return found


def split_fee(rulebook: Rulebook, fee: Decimal, payers: Mapping[str, Decimal]) -> dict[str, Decimal]:
    """Who pays what of ``fee`` under a checked ``payers`` choice, in `payers_allowed` order: each payer pays
    F(shares so far) - F(shares before it), F(s) = fee x s rounded to the fen (shared.money.to_fen). So no part is
    negative and the parts add up to the fee exactly (F(1) = fee), whatever the shares."""
    if check_payers(rulebook, payers).errors:
        raise ValueError("payers must pass check_payers first")
    parts: dict[str, Decimal] = {}
    so_far = Decimal(0)
    before = Decimal("0.00")
    for payer in [p for p in rulebook.enrolment.payers_allowed or () if p in payers]:
        so_far += payers[payer]
        after = to_fen(fee * so_far)
        parts[payer] = after - before
        before = after
    return parts
