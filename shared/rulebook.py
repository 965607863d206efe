"""A period's rulebook (实施办法) as data.

Union staff write one rulebook per period (the format: rulebooks/README.md); the system loads it when the
period is created and never hard-codes a scheme's numbers. Amounts and rates are exact decimals: the YAML
loader reads bare numbers as `Decimal`, never through float. Keys the models know are strictly typed;
unknown keys are kept (the format may grow) and travel through `to_document` unchanged.

Every problem found is reported at once in a `RulebookError`, each with the key path (`loc`) and a
message in Chinese, for the union staff who wrote the file.
"""

from __future__ import annotations

import calendar
import datetime as dt
import hashlib
import json
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    ValidationError,
    field_validator,
    model_serializer,
    model_validator,
)
from pydantic_core import PydanticCustomError

from shared.guards import value_problem
from shared.money import parse_money

__all__ = [
    "APPROVAL_LEVELS",
    "RULEBOOKS_DIR",
    "Approval",
    "BandedPlan",
    "Benefit",
    "Fee",
    "FixedPlan",
    "Grade",
    "GradedPlan",
    "PerDayPlan",
    "Plan",
    "RetirementAge",
    "RetirementAges",
    "Rulebook",
    "RulebookError",
    "SecondAidPlan",
    "fee_for",
    "load_rulebook",
    "parse_rulebook",
]

# The project's own rulebooks, one per seed scheme (rulebooks/README.md). Read by the tests, the benchmarks and
# the demo loader, which all run from the repository; the services themselves take rulebooks over the API.
RULEBOOKS_DIR = Path(__file__).resolve().parents[1] / "rulebooks"

# Levels that may approve a claim, lowest first (第十条 审批权限). The unit union submits but never approves.
APPROVAL_LEVELS: tuple[str, ...] = ("agency_point", "office", "centre")
PLAN_KINDS: tuple[str, ...] = ("banded", "fixed", "second_aid", "per_day", "graded")


class RulebookError(ValueError):
    """A rulebook that cannot be used. `errors` lists every problem as {"loc": [...], "msg": "..."}."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        self.errors = errors
        lines = "; ".join(f"{_loc_text(e['loc'])}: {e['msg']}" for e in errors)
        super().__init__(f"规则书有 {len(errors)} 处错误：{lines}")


def _loc_text(loc: list[str | int]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(顶层)"


# --- field types -------------------------------------------------------------------------------------


def _validate_money(value: object) -> Decimal:
    if isinstance(value, float):
        raise PydanticCustomError("money_float", '必须是金额（写成带引号的文本如 "100.00"，不能是浮点数）')
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise PydanticCustomError("money_type", "必须是金额")
    try:
        amount = parse_money(value)
    except (TypeError, ValueError):
        message = "必须是金额（最多两位小数）：{value}"
        raise PydanticCustomError("money", message, {"value": str(value)}) from None
    if amount < 0:
        raise PydanticCustomError("money_negative", "金额不能为负数：{value}", {"value": str(value)})
    return amount


def _validate_rate(value: object) -> Decimal:
    if isinstance(value, float):
        raise PydanticCustomError("rate_float", '必须是比例（请写成带引号的文本，如 "0.30"，不能是浮点数）')
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise PydanticCustomError("rate_type", "必须是比例")
    try:
        rate = Decimal(value.strip()) if isinstance(value, str) else Decimal(value)
    except InvalidOperation:
        message = "必须是比例（0 到 1 之间的小数）：{value}"
        raise PydanticCustomError("rate", message, {"value": str(value)}) from None
    if not rate.is_finite() or not Decimal(0) <= rate <= Decimal(1):
        raise PydanticCustomError("rate_range", "比例必须在 0 到 1 之间：{value}", {"value": str(value)})
    return rate


def _validate_date(value: object) -> dt.date:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise PydanticCustomError("date", "必须是日期（YYYY-MM-DD）：{value}", {"value": str(value)})


def _decimal_text(value: Decimal) -> str:
    return str(value)


def _date_text(value: dt.date) -> str:
    return value.isoformat()


Money = Annotated[Decimal, PlainValidator(_validate_money), PlainSerializer(_decimal_text, return_type=str)]
Rate = Annotated[Decimal, PlainValidator(_validate_rate), PlainSerializer(_decimal_text, return_type=str)]
Date = Annotated[dt.date, PlainValidator(_validate_date), PlainSerializer(_date_text, return_type=str)]
Text = Annotated[str, Field(strict=True, min_length=1)]
Count = Annotated[int, Field(strict=True, ge=0)]
Flag = Annotated[bool, Field(strict=True)]
Level = Literal["agency_point", "office", "centre"]


def _jsonable(value: Any) -> Any:
    """Unknown keys keep their content in JSON form so that to_document -> parse_rulebook is lossless."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.date):  # datetime included
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, bool | int | str):
        return value
    return str(value)


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="allow", frozen=True, validate_by_alias=True, validate_by_name=True, serialize_by_alias=True
    )

    @model_validator(mode="after")
    def _extras_as_json(self) -> _Model:
        extra = self.__pydantic_extra__
        if extra:
            for key, value in extra.items():
                extra[key] = _jsonable(value)
        return self


# --- the models ----------------------------------------------------------------------------------------


class Window(_Model):
    from_: Date = Field(alias="from")
    to: Date


class Windows(_Model):
    enrolment: Window  # 第五条 交费时限
    coverage: Window  # 第三条 互助期限: the discharge date decides the period
    claims: Window  # 第十一条 补助办理时间


class SmallUnit(_Model):
    max_staff: Count
    min_ratio: Rate


class Participation(_Model):
    denominator: Text
    min_ratio: Rate
    small_unit: SmallUnit


class Fee(_Model):
    renewal: Money
    new: Money
    payers: dict[str, Money] | None = None  # who pays which part of one member's fee (seed 004)


class Loyalty(_Model):
    periods_without_aid: Annotated[int, Field(strict=True, ge=1)]
    grants: Text


def _without_absent(keys: tuple[str, ...]) -> Any:
    """A serializer that leaves out the optional keys a file did not give, so documents keep their shape."""

    def serialize(self: BaseModel, handler: Any) -> Any:
        data = handler(self)
        if isinstance(data, dict):
            for key in keys:
                if data.get(key, 0) is None:
                    del data[key]
        return data

    return model_serializer(mode="wrap")(serialize)


class RetirementAge(_Model):
    """法定退休年龄 of one sex: ``age`` years; from ``reform_from`` (RetirementAges) raised by one month for every
    ``months_per_step`` months the original retirement month lies after it, up to ``raised_to`` years
    (全国人大常委会《关于实施渐进式延迟法定退休年龄的决定》, 2024-09-13: men 60 -> 63 and women cadres 55 -> 58 one
    month every four months, women workers 50 -> 55 one month every two months, from 2025-01-01)."""

    age: Annotated[int, Field(strict=True, ge=1, le=100)]
    raised_to: Annotated[int, Field(strict=True, ge=1, le=100)] | None = None
    months_per_step: Annotated[int, Field(strict=True, ge=1)] = 4

    _serialize = _without_absent(("raised_to",))


class RetirementAges(_Model):
    """Who has reached the legal retirement age (seed 001 运城 "在职职工（不包括达到法定退休年龄的人员）"): by birth
    date and sex, both read from the ID number."""

    reform_from: Date | None = None
    male: RetirementAge
    female: RetirementAge

    _serialize = _without_absent(("reform_from",))


class Enrolment(_Model):
    requires_insurance: list[Text]
    # The payers a unit may choose among for its roster's `payers` (seed 002 "费用交纳有5种方式 … 行政或工会统一
    # 为职工全额交纳，也可由所在单位行政、工会、职工个人各出资一部分，或者职工个人出资交纳").
    payers_allowed: list[Text] | None = Field(default=None, min_length=1)
    member_types: list[Text] = Field(min_length=1)
    retirees_must_renew: Flag = False
    # A member who changed employer may be enrolled by the new unit's roster for a later period without a
    # release from the old unit, provided the old unit does not cover them now. No seed says this (the
    # regulation is silent on changes of employer): an assumption, off unless a period's rules turn it on.
    transfer_between_periods: Flag = False
    headcount_as_of: str | None = None  # "MM-DD": staff numbers are counted on this day each year
    # An in-service member who has reached the legal retirement age is refused (seed 001); absent: no check.
    retirement_age: RetirementAges | None = None
    participation: Participation
    fee: Fee
    shares_per_member: Annotated[int, Field(strict=True, ge=1)] = 1
    refundable: Flag
    loyalty: Loyalty | None = None
    # When a paid roster's cover starts (optional). "coverage_start" (the default): the first day of
    # windows.coverage whatever day within the enrolment window the fees were paid: seed 003 第三条 sets the
    # 互助期限 from 1 January while 第五条 takes fees until 25 February. "payment_date": the bank date of the
    # payment that completed the roster's fees, never before windows.coverage.from; "day_after_payment": the day
    # after it. A fee paid after the enrolment window buys no cover at all (第五条 "逾期不再办理").
    cover_starts: Literal["coverage_start", "payment_date", "day_after_payment"] = "coverage_start"

    @field_validator("headcount_as_of", mode="before")
    @classmethod
    def _month_day(cls, value: object) -> object:
        if value is None:
            return None
        if isinstance(value, str):
            try:
                dt.datetime.strptime(f"2000-{value.strip()}", "%Y-%m-%d")  # 2000 is a leap year
                return value.strip()
            except ValueError:
                pass
        raise PydanticCustomError("month_day", "必须是 MM-DD 形式的月日：{value}", {"value": str(value)})


class Base(_Model):
    from_: Text = Field(alias="from")  # a settlement field, e.g. psn_part_amt
    minus: list[Text] = []


class Band(_Model):
    # mode: marginal (seed 003 第八条 分段计算): `over` exclusive, `upto` inclusive, each band's rate on its part.
    over: Money | None = None
    upto: Money | None = None  # inclusive; absent means open-ended
    # mode: whole_base (seed 001 "核定基数为2000元（含）~5000元的报销比例…25%"): `from` inclusive, the rate of the
    # highest band whose `from` <= base applies to the whole base.
    from_: Money | None = Field(default=None, alias="from")
    rate: Rate

    _serialize = _without_absent(("over", "from"))


SettlementSource = Literal["bureau_required", "bureau_preferred", "paper_allowed"]


class _ClaimablePlan(_Model):
    """What every plan says about the evidence of a stay (issue #12, seed 003 第九条 "凭医保部门提供的住院结算数
    据"): ``settlement_source`` is whether a claim whose settlement the bureau has not sent (``unverified``) may
    be approved: ``bureau_required`` (not until the record arrives), ``bureau_preferred`` (yes, the reviewer is
    warned) or ``paper_allowed`` (the default: hospital receipts suffice, seed 001's uninsured workers)."""

    settlement_source: SettlementSource = "paper_allowed"


class BandedPlan(_ClaimablePlan):
    kind: Literal["banded"]
    code: Text
    name: Text
    mode: Literal["marginal", "whole_base"] = "marginal"
    every_union_member: Flag = False  # seed 002 京卡: every member on a roster of the period, no fee
    med_types: list[Text] = Field(min_length=1)
    base: Base
    accumulate: Literal["period"]
    bands: list[Band] = Field(min_length=1)
    min_aid: Money | None = None
    max_aid_per_period: Money | None = None
    max_aid_per_member: Money | None = None
    fee: Fee | None = None
    # 免申即享: each accepted bureau record of a covered member with a med_type the plan takes becomes a claim.
    auto_claim: Flag = False


class Eligibility(_Model):
    sex: Literal["female", "male"] | None = None


class Benefit(_Model):
    icd10: list[Text] = Field(min_length=1)  # prefixes of the discharge diagnosis code
    amount: Money
    label: Text


class FixedPlan(_ClaimablePlan):
    kind: Literal["fixed"]
    code: Text
    name: Text
    fee: Fee | None = None
    every_union_member: Flag = False
    eligible: Eligibility = Eligibility()
    benefits: list[Benefit] = Field(min_length=1)
    # "term": one fee covers this period and the next term_periods - 1, one payment in all of them
    # (seed 002 重大疾病 "三年90元").
    once_per: Literal["period", "term"]
    term_periods: Annotated[int, Field(strict=True, ge=1)] | None = None

    _serialize = _without_absent(("term_periods",))


class PerDayPlan(_ClaimablePlan):
    """住院津贴 (seed 002): rate_per_day x (days - deductible_days), at most max_days_per_period paid days."""

    kind: Literal["per_day"]
    code: Text
    name: Text
    fee: Fee | None = None
    every_union_member: Flag = False
    med_types: list[Text] = Field(min_length=1)
    rate_per_day: Money
    deductible_days: Count = 0
    max_days_per_period: Annotated[int, Field(strict=True, ge=1)] | None = None
    auto_claim: Flag = False  # as on banded plans


class Grade(_Model):
    code: Text
    amount: Money
    label: Text


class GradedPlan(_ClaimablePlan):
    """意外伤害 (seed 002): the claim names a grade, aid = its amount, at most max_aid_per_period."""

    kind: Literal["graded"]
    code: Text
    name: Text
    fee: Fee | None = None
    every_union_member: Flag = False
    # child: the member's child, under 18 on the day of the event (seed 002 子女意外伤害互助保障计划).
    beneficiary: Literal["member", "child"] = "member"
    grades: list[Grade] = Field(min_length=1)
    max_aid_per_period: Money | None = None


class Ratio(_Model):
    years_from: Count
    remaining_over: Money | None = None  # exclusive (the first format)
    remaining_from: Money | None = None  # inclusive: seed 000 "10万元（含）"
    rate: Rate

    _serialize = _without_absent(("remaining_over", "remaining_from"))

    @property
    def bound(self) -> Decimal:
        """The row's lower bound on remaining, whichever key gave it."""
        bound = self.remaining_from if self.remaining_from is not None else self.remaining_over
        assert bound is not None  # the loader refuses a row with neither
        return bound

    def covers(self, remaining: Decimal) -> bool:
        if self.remaining_from is not None:
            return self.remaining_from <= remaining
        return self.remaining_over is not None and self.remaining_over < remaining


class SecondAidPlan(_ClaimablePlan):
    kind: Literal["second_aid"]
    code: Text
    name: Text
    decided_by: Level
    threshold: Money
    max_aid: Money
    ratios: list[Ratio] = Field(min_length=1)


AnyPlan = BandedPlan | FixedPlan | SecondAidPlan | PerDayPlan | GradedPlan
Plan = Annotated[AnyPlan, Field(discriminator="kind")]


class Tier(_Model):
    level: Level
    up_to: Money | None = None


class Approval(_Model):
    tiers: list[Tier] = Field(min_length=1)  # 第十条: tried from the bottom
    sla_working_days: Annotated[int, Field(strict=True, ge=1)]
    # Every claim's final approval at this level whatever its aid; the tiers below it review and pass it up
    # (seed 001 补助流程: the county union checks, the city centre "受理申请并进行审查 … 审批通过"). Optional:
    # without it the tiers' `up_to` decide (seed 003 第十条).
    approved_by: Level | None = None

    _serialize = _without_absent(("approved_by",))


class ExclusionCheck(_Model):
    """An exclusion (除外责任) no data shows: the reviewer answers it before approving (seed 003 第十二条)."""

    code: Text  # the answer's key, and a rejection's reason code when the exclusion applies
    text: Text  # the question as the reviewer reads it
    article: Text  # where the rule is written, e.g. 第十二条第三款


class Rulebook(_Model):
    code: Text
    name: Text
    scheme: Text
    previous_period: Text | None = None
    windows: Windows
    enrolment: Enrolment
    plans: list[Plan] = Field(min_length=1)
    approval: Approval
    exclusions: list[Text]  # 第十二条 除外责任
    # The exclusions of 第十二条 that no settlement field shows (fights, drunkenness, third-party liability,
    # new local payments, fraud ...): a checklist the approving reviewer answers item by item; the answers are
    # recorded with the decision. Optional: a rulebook without it asks nothing.
    exclusions_checklist: list[ExclusionCheck] | None = None
    # Who may file a claim (seed 001 "职工申请办理互助金时，应由职工所在单位工会统一进行办理"): `unit` = the
    # unit union's agent (or the admin) only, a member's own claim is refused; `unit_or_member` (the default)
    # lets members claim for themselves too.
    filed_by: Literal["unit", "unit_or_member"] | None = None

    _serialize = _without_absent(("exclusions_checklist", "filed_by"))

    @property
    def members_may_file(self) -> bool:
        return self.filed_by != "unit"

    def plan(self, code: str) -> AnyPlan:
        for plan in self.plans:
            if plan.code == code:
                return plan
        raise KeyError(f"rulebook {self.code} has no plan {code!r}")

    def plans_without_own_fee(self) -> list[AnyPlan]:
        """Plans covered by the enrolment fee (the others, like 女性馨康, carry their own fee). The plan that
        loyalty grants (第十五条) is no plan of the fee: only member.loyalty_granted adds it to a coverage."""
        granted = self.enrolment.loyalty.grants if self.enrolment.loyalty else None
        return [plan for plan in self.plans if getattr(plan, "fee", None) is None and plan.code != granted]

    def to_document(self) -> dict[str, Any]:
        """JSON-serialisable, with the original key names: parse_rulebook(rb.to_document()) == rb."""
        return self.model_dump(mode="json", by_alias=True)

    def redated(self, coverage_year: int) -> Rulebook:
        """A copy whose windows are shifted by whole years so that coverage starts in `coverage_year`.

        Month and day are kept; 29 February becomes 28 February in a common year. Used for demo periods.
        """
        years = coverage_year - self.windows.coverage.from_.year

        def shift(day: dt.date) -> dt.date:
            year = day.year + years
            if day.month == 2 and day.day == 29 and not calendar.isleap(year):
                return day.replace(year=year, day=28)
            return day.replace(year=year)

        def shifted(window: Window) -> Window:
            return window.model_copy(update={"from_": shift(window.from_), "to": shift(window.to)})

        windows = self.windows.model_copy(
            update={
                "enrolment": shifted(self.windows.enrolment),
                "coverage": shifted(self.windows.coverage),
                "claims": shifted(self.windows.claims),
            }
        )
        return self.model_copy(update={"windows": windows})


def fee_for(rulebook: Rulebook, renewing: bool, plan_code: str | None = None) -> Decimal:
    """One member's fee (第四条): the renewal fee for a member of the previous period, else the new fee.

    With `plan_code`, the fee of that plan when it carries its own, else the enrolment fee.
    """
    fee = rulebook.enrolment.fee
    if plan_code is not None:
        fee = getattr(rulebook.plan(plan_code), "fee", None) or fee
    return fee.renewal if renewing else fee.new


# --- checks across keys --------------------------------------------------------------------------------

Loc = list[str | int]


def _consistency_errors(rulebook: Rulebook) -> Iterator[tuple[Loc, str]]:
    for name in ("enrolment", "coverage", "claims"):
        window: Window = getattr(rulebook.windows, name)
        if window.from_ > window.to:
            yield ["windows", name, "to"], f"结束日期 {window.to} 早于开始日期 {window.from_}"

    allowed = rulebook.enrolment.payers_allowed
    yield from _fee_errors(rulebook.enrolment.fee, ["enrolment", "fee"], allowed)
    if allowed is not None and len(set(allowed)) != len(allowed):
        yield ["enrolment", "payers_allowed"], "付费方重复"

    seen_codes: set[str] = set()
    for i, plan in enumerate(rulebook.plans):
        if plan.code in seen_codes:
            yield ["plans", i, "code"], f"方案代码重复：{plan.code}"
        seen_codes.add(plan.code)
        fee = getattr(plan, "fee", None)
        if fee is not None:
            yield from _fee_errors(fee, ["plans", i, "fee"], allowed)
        # every_union_member (seed 002 京卡 "不用花一分钱保费"): the plan is free, so it cannot carry a fee.
        if getattr(plan, "every_union_member", False) and fee is not None and (fee.new or fee.renewal):
            yield ["plans", i, "every_union_member"], "全体会员自动享有的方案不能收费（fee 必须为 0）"
        if isinstance(plan, BandedPlan):
            yield from _band_errors(plan, ["plans", i])
        elif isinstance(plan, GradedPlan):
            seen_grades: set[str] = set()
            for j, grade in enumerate(plan.grades):
                if grade.code in seen_grades:
                    yield ["plans", i, "grades", j, "code"], f"等级代码重复：{grade.code}"
                seen_grades.add(grade.code)
        elif isinstance(plan, SecondAidPlan):
            for j, ratio in enumerate(plan.ratios):
                given = [k for k in ("remaining_over", "remaining_from") if getattr(ratio, k) is not None]
                if len(given) != 1:
                    yield ["plans", i, "ratios", j, "remaining_from"], "remaining_from 与 remaining_over 必须且只能给一个"
        elif isinstance(plan, FixedPlan):
            # once_per: term needs its length; term_periods means nothing with once_per: period (seed 002 "三年").
            if plan.once_per == "term" and plan.term_periods is None:
                yield ["plans", i, "term_periods"], "once_per: term 需要 term_periods（一次交费覆盖的期数）"
            if plan.once_per == "period" and plan.term_periods is not None:
                yield ["plans", i, "term_periods"], "term_periods 只能与 once_per: term 一起使用"
            seen_prefixes: set[str] = set()
            for j, benefit in enumerate(plan.benefits):
                for k, prefix in enumerate(benefit.icd10):
                    key = _icd10_key(prefix)
                    if key in seen_prefixes:
                        yield ["plans", i, "benefits", j, "icd10", k], f"ICD-10 前缀重复：{prefix}"
                    seen_prefixes.add(key)

    yield from _tier_errors(rulebook.approval)
    ages = rulebook.enrolment.retirement_age
    if ages is not None:
        for sex in ("male", "female"):
            rule: RetirementAge = getattr(ages, sex)
            if rule.raised_to is not None and rule.raised_to < rule.age:
                yield ["enrolment", "retirement_age", sex, "raised_to"], f"延迟后的年龄 {rule.raised_to} 不能小于 {rule.age}"
            if rule.raised_to is not None and ages.reform_from is None:
                yield ["enrolment", "retirement_age", "reform_from"], "给出 raised_to 时必须给出 reform_from（改革起始日）"
    approved_by = rulebook.approval.approved_by
    if approved_by is not None and approved_by not in [tier.level for tier in rulebook.approval.tiers]:
        yield ["approval", "approved_by"], f"审批层级 {approved_by} 不在 approval.tiers 之中"
    seen_checks: set[str] = set()
    for j, check in enumerate(rulebook.exclusions_checklist or []):
        if check.code in seen_checks:
            yield ["exclusions_checklist", j, "code"], f"核查项代码重复：{check.code}"
        seen_checks.add(check.code)


def _fee_errors(fee: Fee, loc: Loc, allowed: list[str] | None = None) -> Iterator[tuple[Loc, str]]:
    if fee.payers is None:
        return
    for payer in fee.payers:
        if allowed is not None and payer not in allowed:
            yield [*loc, "payers", payer], f"付费方 {payer} 不在 enrolment.payers_allowed 之内"
    paid = sum(fee.payers.values(), Decimal("0.00"))
    for key in ("new", "renewal"):
        due: Decimal = getattr(fee, key)
        if paid != due:
            yield [*loc, "payers"], f"各付费方金额之和 {paid} 不等于会费 {key} {due}"


def _band_errors(plan: BandedPlan, loc: Loc) -> Iterator[tuple[Loc, str]]:
    if plan.mode == "whole_base":
        yield from _whole_base_band_errors(plan, loc)
        return
    for j, band in enumerate(plan.bands):
        if band.from_ is not None:
            yield [*loc, "bands", j, "from"], "分段累计（mode: marginal）用 over/upto，from 只用于 mode: whole_base"
        if band.over is None:
            yield [*loc, "bands", j, "over"], "缺少必填项"
    if any(band.over is None for band in plan.bands):
        return
    # README: `over` exclusive, `upto` inclusive; only the top band may be open-ended.
    for j, band in enumerate(plan.bands):
        assert band.over is not None
        if band.upto is not None and band.upto <= band.over:
            yield [*loc, "bands", j, "upto"], f"上限 {band.upto} 必须大于起点 {band.over}"
        if j == 0:
            continue
        below = plan.bands[j - 1]
        assert below.over is not None
        if below.upto is None:
            yield [*loc, "bands", j - 1, "upto"], "只有最后一段可以不设上限"
        elif band.over < below.over:
            yield [*loc, "bands", j, "over"], "分段必须按起点从低到高排列"
        elif band.over < below.upto:
            yield [*loc, "bands", j, "over"], f"与上一段重叠：起点 {band.over} 低于上一段上限 {below.upto}"


def _whole_base_band_errors(plan: BandedPlan, loc: Loc) -> Iterator[tuple[Loc, str]]:
    # mode: whole_base (seed 001): each band starts at `from` (inclusive) and runs to the next band's `from`;
    # no `over`/`upto`. Starts strictly rising; rates never falling, so that F(B) = rate(B) x B never falls as
    # the base grows and a period's stays add up to F of their summed base (README "How banded aid computes").
    for j, band in enumerate(plan.bands):
        for key in ("over", "upto"):
            if getattr(band, key) is not None:
                yield [*loc, "bands", j, key], f"整体费率（mode: whole_base）不用 {key}，用 from"
        if band.from_ is None:
            yield [*loc, "bands", j, "from"], "缺少必填项"
        elif j > 0 and (below := plan.bands[j - 1]).from_ is not None:
            if band.from_ <= below.from_:
                yield [*loc, "bands", j, "from"], "分段必须按起点从低到高排列"
            elif band.rate < below.rate:
                yield [*loc, "bands", j, "rate"], "整体费率的比例不能随基数升高而降低"


def _tier_errors(approval: Approval) -> Iterator[tuple[Loc, str]]:
    # 第十条: tiers run from the lowest approver up; the top one approves whatever the lower ones may not.
    tiers = approval.tiers
    last = len(tiers) - 1
    for j, tier in enumerate(tiers):
        if j > 0 and APPROVAL_LEVELS.index(tier.level) <= APPROVAL_LEVELS.index(tiers[j - 1].level):
            yield ["approval", "tiers", j, "level"], "审批层级必须自下而上排列，且不能重复"
        if j == last:
            if tier.up_to is not None:
                yield ["approval", "tiers", j, "up_to"], "最后一级必须不设上限（审批兜底）"
        elif tier.up_to is None:
            yield ["approval", "tiers", j, "up_to"], "只有最后一级可以不设上限"
        elif j > 0 and (below := tiers[j - 1].up_to) is not None and tier.up_to <= below:
            yield ["approval", "tiers", j, "up_to"], f"审批上限必须逐级递增：{tier.up_to} 不大于 {below}"


def _icd10_key(code: str) -> str:
    return code.strip().upper().replace(".", "")


# --- loading -------------------------------------------------------------------------------------------

_MESSAGES: dict[str, str] = {
    "missing": "缺少必填项",
    "string_type": "必须是文本",
    "string_too_short": "不能为空",
    "int_type": "必须是整数",
    "int_from_float": "必须是整数",
    "bool_type": "必须是 true 或 false",
    "list_type": "必须是列表",
    "dict_type": "必须是映射（键: 值）",
    "model_type": "必须是映射（键: 值）",
    "model_attributes_type": "必须是映射（键: 值）",
    "too_short": "至少需要 {min_length} 项",
    "greater_than_equal": "不能小于 {ge}",
    "literal_error": "必须是以下之一：{expected}",
    "union_tag_invalid": "未知的方案类型 {tag}，应为 {expected_tags}",
    "union_tag_not_found": "缺少必填项",
}


def _translate(error: Mapping[str, Any]) -> dict[str, Any]:
    loc: Loc = list(error["loc"])
    # A discriminated union puts the plan kind into the path: plans.0.banded.bands -> plans.0.bands.
    if len(loc) >= 3 and loc[0] == "plans" and isinstance(loc[1], int) and loc[2] in PLAN_KINDS:
        del loc[2]
    kind = error["type"]
    if kind == "union_tag_not_found":
        loc.append("kind")
    template = _MESSAGES.get(kind)
    if template is None:
        custom = kind.startswith(_CUSTOM_PREFIXES)  # our own validators already speak Chinese
        return {"loc": loc, "msg": error["msg"] if custom else f"取值无效：{error['msg']}"}
    context = {key: _choices(str(value)) for key, value in (error.get("ctx") or {}).items()}
    try:
        message = template.format(**context)
    except (KeyError, IndexError):
        message = template.split("{")[0].rstrip("：: ")
    return {"loc": loc, "msg": message}


_CUSTOM_PREFIXES = ("money", "rate", "date", "month_day")


def _choices(text: str) -> str:
    """ "'a', 'b' or 'c'" -> "a、b、c" """
    return text.replace("'", "").replace(" or ", "、").replace(", ", "、")


def parse_rulebook(data: Mapping[str, Any]) -> Rulebook:
    """Validate a JSON-like mapping (a loaded YAML file, or a stored `to_document()`)."""
    if not isinstance(data, Mapping):
        raise RulebookError([{"loc": [], "msg": "规则书顶层必须是映射（键: 值）"}])
    try:
        rulebook = Rulebook.model_validate(dict(data))
    except ValidationError as exc:
        raise RulebookError([_translate(error) for error in exc.errors()]) from None
    problems = [{"loc": loc, "msg": msg} for loc, msg in _consistency_errors(rulebook)]
    if problems:
        raise RulebookError(problems)
    return rulebook


class _DecimalSafeLoader(yaml.SafeLoader):
    """SafeLoader reading bare numbers with a fraction as Decimal (never float); duplicate keys are errors."""


def _construct_decimal(loader: yaml.SafeLoader, node: yaml.Node) -> Decimal | str:
    text = str(loader.construct_scalar(node))  # type: ignore[arg-type]
    try:
        return Decimal(text.replace("_", ""))
    except InvalidOperation:
        return text  # e.g. sexagesimal 1:30.5; the model reports it if the key wants a number


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.Node) -> dict[Any, Any]:
    assert isinstance(node, yaml.MappingNode)
    loader.flatten_mapping(node)
    mapping: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in mapping:
            mark = key_node.start_mark
            raise yaml.constructor.ConstructorError(None, None, f"重复的键 {key!r}（第 {mark.line + 1} 行）", mark)
        mapping[key] = loader.construct_object(value_node, deep=True)
    return mapping


_DecimalSafeLoader.add_constructor("tag:yaml.org,2002:float", _construct_decimal)
_DecimalSafeLoader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)


def load_rulebook(text: str | bytes) -> Rulebook:
    """Load a rulebook from YAML (JSON is valid YAML)."""
    try:
        data = yaml.load(text, Loader=_DecimalSafeLoader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"（第 {mark.line + 1} 行第 {mark.column + 1} 列）" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise RulebookError([{"loc": [], "msg": f"YAML 语法错误{where}：{problem}"}]) from None
    except RecursionError:
        raise RulebookError([{"loc": [], "msg": "YAML 嵌套过深"}]) from None
    if (found := value_problem(data)) is not None:  # a NUL ("\0"), too deep, NaN (.nan): nothing to store
        loc, msg, _ = found
        raise RulebookError([{"loc": loc, "msg": msg}])
    return parse_rulebook(data)


_PARSED: OrderedDict[tuple[str, int, str], Rulebook] = OrderedDict()
_PARSED_KEPT = 64


def period_rulebook(code: str, revision: int | None, document: Mapping[str, Any]) -> Rulebook:
    """A published period's rulebook, parsed once per (period, revision, content) and kept (the last 64), for every
    service: parsing validates the whole document, a look-up in the cache costs a digest of it."""
    digest = hashlib.sha256(json.dumps(document, sort_keys=True, default=str).encode()).hexdigest()
    key = (code, revision or 0, digest)
    rulebook = _PARSED.get(key)
    if rulebook is None:
        rulebook = parse_rulebook(document)
        _PARSED[key] = rulebook
        while len(_PARSED) > _PARSED_KEPT:
            _PARSED.popitem(last=False)
    else:
        _PARSED.move_to_end(key)
    return rulebook
