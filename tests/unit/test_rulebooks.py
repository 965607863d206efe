"""Rulebooks load unchanged, round-trip, redate, and bad ones are refused with the offending key named."""

from __future__ import annotations

import copy
import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from shared.rulebook import (
    BandedPlan,
    FixedPlan,
    RulebookError,
    SecondAidPlan,
    fee_for,
    load_rulebook,
    parse_rulebook,
)
from tests.conftest import RULEBOOKS


def rulebooks_dir() -> Path:
    return RULEBOOKS


RULEBOOK_FILES = sorted(rulebooks_dir().glob("*.yaml"))


def document(name: str) -> dict[str, Any]:
    return load_rulebook((rulebooks_dir() / f"{name}.yaml").read_text(encoding="utf-8")).to_document()


def errors_of(data: Any) -> list[dict[str, Any]]:
    with pytest.raises(RulebookError) as caught:
        parse_rulebook(data)
    return caught.value.errors


def locs(errors: list[dict[str, Any]]) -> list[list[str | int]]:
    return [e["loc"] for e in errors]


# --- the shipped rulebooks -------------------------------------------------------------------------------


def test_the_repository_holds_a_rulebook_for_every_seed_scheme() -> None:
    assert {p.stem for p in RULEBOOK_FILES} >= {"yunnan-18", "yunnan-19", "yuncheng-2024", "neimenggu-2019",
                                             "neimenggu-2019-sengong", "beijing-2014"}
    assert not (rulebooks_dir() / "proposed").exists()  # issue #16: every proposed key is read now


@pytest.mark.parametrize("path", RULEBOOK_FILES, ids=lambda p: p.stem)
def test_every_rulebook_loads_unchanged(path: Path) -> None:
    rulebook = load_rulebook(path.read_bytes())
    assert rulebook.plans
    assert rulebook.windows.coverage.from_ <= rulebook.windows.coverage.to


@pytest.mark.parametrize("path", RULEBOOK_FILES, ids=lambda p: p.stem)
def test_a_rulebook_survives_a_round_trip_through_its_json_document(path: Path) -> None:
    rulebook = load_rulebook(path.read_text(encoding="utf-8"))
    text = json.dumps(rulebook.to_document(), ensure_ascii=False)
    assert parse_rulebook(json.loads(text)) == rulebook
    assert load_rulebook(text) == rulebook  # JSON is YAML


def test_the_document_uses_the_original_key_names_and_exact_text_for_numbers() -> None:
    doc = document("yunnan-18")
    assert doc["windows"]["coverage"] == {"from": "2022-01-01", "to": "2022-12-31"}
    assert doc["plans"][0]["base"] == {"from": "psn_part_amt", "minus": ["fulamt_ownpay_amt"]}
    assert doc["plans"][0]["bands"][0] == {"over": "800.00", "upto": "10000.00", "rate": "0.30"}
    assert doc["enrolment"]["fee"]["renewal"] == "120.00"


def test_yunnan_18_reads_as_its_articles_say() -> None:
    rb = load_rulebook((rulebooks_dir() / "yunnan-18.yaml").read_text(encoding="utf-8"))
    plan = rb.plan("inpatient")
    assert isinstance(plan, BandedPlan)
    assert [(b.over, b.upto, b.rate) for b in plan.bands] == [
        (Decimal("800"), Decimal("10000"), Decimal("0.3")),
        (Decimal("10000"), Decimal("100000"), Decimal("0.7")),
        (Decimal("100000"), Decimal("500000"), Decimal("1")),
    ]
    assert plan.min_aid == Decimal("100.00")
    assert plan.max_aid_per_period is None
    assert rb.windows.enrolment.from_ == dt.date(2021, 12, 20)
    assert rb.previous_period == "yn-17"
    assert rb.enrolment.retirees_must_renew is False
    assert rb.enrolment.loyalty is not None and rb.enrolment.loyalty.periods_without_aid == 3
    assert [t.level for t in rb.approval.tiers] == ["agency_point", "office", "centre"]
    assert fee_for(rb, renewing=True) == Decimal("120.00")
    assert fee_for(rb, renewing=False) == Decimal("150.00")


def test_yunnan_19_adds_second_aid_and_the_retiree_rule() -> None:
    rb = load_rulebook((rulebooks_dir() / "yunnan-19.yaml").read_text(encoding="utf-8"))
    second = rb.plan("second-aid")
    assert isinstance(second, SecondAidPlan)
    assert second.threshold == Decimal("100000.00") and second.decided_by == "centre"
    assert rb.enrolment.retirees_must_renew is True
    assert rb.enrolment.loyalty is None


def test_yuncheng_counts_headcount_on_31_may_and_defaults_are_filled() -> None:
    rb = load_rulebook((rulebooks_dir() / "yuncheng-2024.yaml").read_text(encoding="utf-8"))
    assert rb.enrolment.headcount_as_of == "05-31"
    assert rb.enrolment.member_types == ["in_service"]
    assert rb.approval.tiers[0].up_to == Decimal("0.00")


def test_neimenggu_fee_split_is_sengongs_alone_and_the_womens_plan_has_its_own_fee() -> None:
    # Seed 004: the 50/10/10/30 split and the administration paying 馨康's 35 are said of 森工集团 only.
    region = load_rulebook((rulebooks_dir() / "neimenggu-2019.yaml").read_text(encoding="utf-8"))
    sengong = load_rulebook((rulebooks_dir() / "neimenggu-2019-sengong.yaml").read_text(encoding="utf-8"))
    assert region.enrolment.fee.payers is None
    assert sengong.enrolment.fee.payers == {
        "employer": Decimal("50.00"),
        "company_union": Decimal("10.00"),
        "regional_union": Decimal("10.00"),
        "member": Decimal("30.00"),
    }
    for rb in (region, sengong):
        xinkang = rb.plan("xinkang")
        assert isinstance(xinkang, FixedPlan) and xinkang.eligible.sex == "female"
        assert [p.code for p in rb.plans_without_own_fee()] == ["inpatient"]
        assert fee_for(rb, renewing=True) == Decimal("100.00")
        assert fee_for(rb, renewing=False, plan_code="xinkang") == Decimal("35.00")


def test_neimenggu_reads_as_seed_004_says() -> None:
    rb = load_rulebook((rulebooks_dir() / "neimenggu-2019.yaml").read_text(encoding="utf-8"))
    plan = rb.plan("inpatient")
    assert isinstance(plan, BandedPlan)
    # 乌兰察布: 符合基本医疗费用 48.22万 - 统筹支付 24.74万 is the base; 25万 a period; no participation ratio.
    assert (plan.base.from_, plan.base.minus) == ("inscp_scp_amt", ["hifp_pay"])
    assert plan.max_aid_per_period == Decimal("250000.00")
    assert rb.enrolment.participation.min_ratio == 0
    # 阿拉善: every complete claim goes to the association (the centre) for its decision.
    assert [(t.level, t.up_to) for t in rb.approval.tiers] == [("agency_point", Decimal("0.00")), ("centre", None)]


def test_every_rulebook_marks_its_assumptions_and_cites_its_source() -> None:
    for path in RULEBOOK_FILES:
        text = path.read_text(encoding="utf-8")
        assert "seed 00" in text.lower(), path.name
        if path.parent == rulebooks_dir() and path.stem != "yunnan-18":  # only yunnan-18 is exact
            assert "ASSUMED" in text, path.name


def unread_keys(value: Any, loc: str = "") -> list[str]:
    """Keys the loader kept as unknown extras anywhere in a loaded rulebook."""
    if isinstance(value, BaseModel):
        found = [f"{loc}.{key}" for key in (value.__pydantic_extra__ or {})]
        for name in type(value).model_fields:
            found += unread_keys(getattr(value, name), f"{loc}.{name}")
        return found
    if isinstance(value, list):
        return [key for i, item in enumerate(value) for key in unread_keys(item, f"{loc}[{i}]")]
    return []


@pytest.mark.parametrize("path", RULEBOOK_FILES, ids=lambda p: p.stem)
def test_every_key_of_every_rulebook_is_read_by_the_loader_none_left_as_an_unknown_extra(path: Path) -> None:
    # The keys once in proposed/ (issue #16) are typed now: a typo in them is an error, not a silent extra.
    assert unread_keys(load_rulebook(path.read_bytes())) == []


def test_asking_for_a_plan_the_rulebook_lacks_is_a_key_error() -> None:
    rb = parse_rulebook(document("yuncheng-2024"))
    with pytest.raises(KeyError):
        rb.plan("xinkang")


def test_bare_yaml_numbers_are_read_as_exact_decimals_never_floats() -> None:
    text = (rulebooks_dir() / "yunnan-18.yaml").read_text(encoding="utf-8")
    text = text.replace('rate: "0.30"', "rate: 0.30").replace('min_aid: "100.00"', "min_aid: 100.10")
    plan = load_rulebook(text).plan("inpatient")
    assert isinstance(plan, BandedPlan)
    assert plan.bands[0].rate == Decimal("0.30")
    assert plan.min_aid == Decimal("100.10")


def test_unknown_keys_are_kept_and_travel_through_the_document() -> None:
    doc = document("yunnan-18")
    doc["hotline"] = "0871-12345"
    doc["plans"][0]["note"] = {"since": dt.date(2022, 1, 1), "factor": Decimal("1.5")}
    rb = parse_rulebook(doc)
    again = rb.to_document()
    assert again["hotline"] == "0871-12345"
    assert again["plans"][0]["note"] == {"since": "2022-01-01", "factor": "1.5"}
    assert parse_rulebook(again) == rb


# --- redated ---------------------------------------------------------------------------------------------


def test_redating_shifts_every_window_by_whole_years_and_leaves_the_original_alone() -> None:
    rb = parse_rulebook(document("yunnan-18"))
    demo = rb.redated(2025)
    assert (demo.windows.enrolment.from_, demo.windows.enrolment.to) == (dt.date(2024, 12, 20), dt.date(2025, 2, 25))
    assert (demo.windows.coverage.from_, demo.windows.coverage.to) == (dt.date(2025, 1, 1), dt.date(2025, 12, 31))
    assert (demo.windows.claims.from_, demo.windows.claims.to) == (dt.date(2025, 3, 1), dt.date(2026, 6, 30))
    assert rb.windows.coverage.from_ == dt.date(2022, 1, 1)
    assert demo.plans == rb.plans and demo.code == rb.code
    assert parse_rulebook(demo.to_document()) == demo


def test_redating_a_leap_day_lands_on_28_february() -> None:
    doc = document("yuncheng-2024")
    doc["windows"]["enrolment"] = {"from": "2023-12-01", "to": "2024-02-29"}
    demo = parse_rulebook(doc).redated(2025)
    assert demo.windows.enrolment.to == dt.date(2025, 2, 28)
    assert parse_rulebook(doc).redated(2028).windows.enrolment.to == dt.date(2028, 2, 29)


# --- bad rulebooks ---------------------------------------------------------------------------------------


def test_a_missing_top_level_key_is_named() -> None:
    doc = document("yunnan-18")
    del doc["approval"]
    assert errors_of(doc) == [{"loc": ["approval"], "msg": "缺少必填项"}]


def test_a_missing_nested_key_is_named_by_its_path() -> None:
    doc = document("yunnan-18")
    del doc["plans"][0]["bands"][1]["rate"]
    del doc["windows"]["claims"]["from"]
    assert locs(errors_of(doc)) == [["windows", "claims", "from"], ["plans", 0, "bands", 1, "rate"]]


def test_a_rate_that_is_not_a_number_is_named() -> None:
    doc = document("yunnan-18")
    doc["plans"][0]["bands"][1]["rate"] = "abc"
    [error] = errors_of(doc)
    assert error["loc"] == ["plans", 0, "bands", 1, "rate"]
    assert "比例" in error["msg"]


@pytest.mark.parametrize("rate", [0.3, Decimal("1.5"), "-0.1", "NaN", True])
def test_a_float_or_out_of_range_rate_is_refused(rate: Any) -> None:
    doc = document("yunnan-18")
    doc["plans"][0]["bands"][0]["rate"] = rate
    assert locs(errors_of(doc)) == [["plans", 0, "bands", 0, "rate"]]


@pytest.mark.parametrize("amount", ["100.001", 100.0, "abc", "-5.00", "Infinity"])
def test_an_amount_that_is_not_money_is_refused(amount: Any) -> None:
    doc = document("yunnan-18")
    doc["plans"][0]["min_aid"] = amount
    [error] = errors_of(doc)
    assert error["loc"] == ["plans", 0, "min_aid"]
    assert "金额" in error["msg"]


def test_overlapping_bands_are_refused_at_the_band_that_overlaps() -> None:
    doc = document("yunnan-18")
    doc["plans"][0]["bands"][1]["over"] = "9000.00"
    [error] = errors_of(doc)
    assert error["loc"] == ["plans", 0, "bands", 1, "over"]
    assert "重叠" in error["msg"]


def test_bands_may_leave_a_gap_but_not_run_backwards() -> None:
    doc = document("yunnan-18")
    doc["plans"][0]["bands"][1]["over"] = "20000.00"  # a gap 10000-20000 pays nothing
    assert parse_rulebook(doc)
    doc["plans"][0]["bands"] = list(reversed(doc["plans"][0]["bands"]))
    assert ["plans", 0, "bands", 1, "over"] in locs(errors_of(doc))


def test_only_the_top_band_may_be_open_ended() -> None:
    doc = document("yunnan-18")
    doc["plans"][0]["bands"] = [{"over": "2000.00", "rate": "0.25"}, {"over": "5000.00", "rate": "0.30"}]
    assert locs(errors_of(doc)) == [["plans", 0, "bands", 0, "upto"]]


def test_a_band_whose_top_is_below_its_start_is_refused() -> None:
    doc = document("yunnan-18")
    doc["plans"][0]["bands"][0]["upto"] = "500.00"
    assert ["plans", 0, "bands", 0, "upto"] in locs(errors_of(doc))


def test_approval_tiers_must_rise_and_end_open() -> None:
    doc = document("yunnan-18")
    doc["approval"]["tiers"][1]["up_to"] = "2000.00"
    assert locs(errors_of(doc)) == [["approval", "tiers", 1, "up_to"]]

    doc = document("yunnan-18")
    doc["approval"]["tiers"][2]["up_to"] = "50000.00"
    assert locs(errors_of(doc)) == [["approval", "tiers", 2, "up_to"]]

    doc = document("yunnan-18")
    del doc["approval"]["tiers"][1]["up_to"]
    assert locs(errors_of(doc)) == [["approval", "tiers", 1, "up_to"]]


def test_approval_levels_run_upwards_and_come_from_the_hierarchy() -> None:
    doc = document("yunnan-18")
    doc["approval"]["tiers"][0]["level"] = "office"
    doc["approval"]["tiers"][1]["level"] = "agency_point"
    assert ["approval", "tiers", 1, "level"] in locs(errors_of(doc))

    doc = document("yunnan-18")
    doc["approval"]["tiers"][0]["level"] = "county"
    [error] = errors_of(doc)
    assert error["loc"] == ["approval", "tiers", 0, "level"]
    assert "agency_point" in error["msg"]


def test_fee_payers_must_add_up_to_the_fee() -> None:
    doc = document("neimenggu-2019-sengong")
    doc["enrolment"]["fee"]["payers"]["member"] = "20.00"
    errors = errors_of(doc)
    assert {tuple(e["loc"]) for e in errors} == {("enrolment", "fee", "payers")}
    assert "90.00" in errors[0]["msg"]

    doc = document("neimenggu-2019-sengong")
    doc["plans"][1]["fee"]["payers"] = {"employer": "30.00"}
    assert {tuple(loc) for loc in locs(errors_of(doc))} == {("plans", 1, "fee", "payers")}


def test_a_window_that_ends_before_it_starts_is_refused() -> None:
    doc = document("yunnan-18")
    doc["windows"]["coverage"]["to"] = "2021-12-31"
    assert locs(errors_of(doc)) == [["windows", "coverage", "to"]]


def test_a_date_must_be_a_calendar_date() -> None:
    doc = document("yunnan-18")
    doc["windows"]["coverage"]["from"] = "2022-02-30"
    assert locs(errors_of(doc)) == [["windows", "coverage", "from"]]


def test_an_unknown_plan_kind_is_named() -> None:
    doc = document("yunnan-18")
    doc["plans"][0]["kind"] = "lottery"
    [error] = errors_of(doc)
    assert error["loc"] == ["plans", 0]
    assert "lottery" in error["msg"]


def test_known_keys_are_strictly_typed() -> None:
    doc = document("yunnan-18")
    doc["enrolment"]["refundable"] = "no"
    doc["enrolment"]["shares_per_member"] = "1"
    doc["plans"][0]["med_types"] = [21]
    assert locs(errors_of(doc)) == [
        ["enrolment", "shares_per_member"],
        ["enrolment", "refundable"],
        ["plans", 0, "med_types", 0],
    ]


def test_duplicate_plan_codes_are_refused() -> None:
    doc = document("yunnan-19")
    doc["plans"][1]["code"] = "inpatient"
    assert locs(errors_of(doc)) == [["plans", 1, "code"]]


def test_every_error_is_reported_at_once() -> None:
    doc = copy.deepcopy(document("yunnan-18"))
    del doc["code"]
    doc["plans"][0]["bands"][2]["rate"] = "abc"
    doc["approval"]["sla_working_days"] = 0
    assert locs(errors_of(doc)) == [
        ["code"],
        ["plans", 0, "bands", 2, "rate"],
        ["approval", "sla_working_days"],
    ]


def test_yaml_syntax_errors_and_a_non_mapping_top_level_are_rulebook_errors() -> None:
    with pytest.raises(RulebookError) as caught:
        load_rulebook("code: [yn-18\n")
    assert "YAML" in caught.value.errors[0]["msg"]
    with pytest.raises(RulebookError) as caught:
        load_rulebook("- yn-18\n")
    assert caught.value.errors == [{"loc": [], "msg": "规则书顶层必须是映射（键: 值）"}]
    with pytest.raises(RulebookError):
        load_rulebook("")
    with pytest.raises(RulebookError):
        parse_rulebook(["not", "a", "mapping"])  # type: ignore[arg-type]


def test_a_duplicated_yaml_key_is_an_error_not_a_silent_override() -> None:
    text = (rulebooks_dir() / "yuncheng-2024.yaml").read_text(encoding="utf-8")
    with pytest.raises(RulebookError) as caught:
        load_rulebook(text + "\ncode: other\n")
    assert "重复" in caught.value.errors[0]["msg"]


def test_the_error_message_lists_each_problem_with_its_path() -> None:
    doc = document("yunnan-18")
    doc["plans"][0]["bands"][1]["rate"] = "abc"
    with pytest.raises(RulebookError, match=r"plans\[0\]\.bands\[1\]\.rate"):
        parse_rulebook(doc)
