"""A Beijing unit's roster end to end on the enrollment side (seed 002 暖·互助, rulebooks/beijing-2014.yaml,
issue #16): plans chosen per row, several shares ("多买几份"), the unit's choice of payers ("费用交纳有5种方式"),
a man on the women's plan refused by row, 100% below 30 staff, and the fee-free 京卡 plan for every member
("全市会员职工不用花一分钱保费就可以享受") carried to claims in member.covered with the shares."""

from __future__ import annotations

import csv
import io
from typing import Any

from tests.service.test_enrollment import (
    World,
    admin,  # noqa: F401 (fixture used by name)
    error_codes,
    people,
    period_doc,
    roster_body,
    world,  # noqa: F401 (fixture used by name)
)


def by_sex(n_women: int, n_men: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    women: list[dict[str, Any]] = []
    men: list[dict[str, Any]] = []
    while len(women) < n_women or len(men) < n_men:
        [p] = people(1)
        (women if p["sex"] == "female" else men).append(p)
    return women[:n_women], men[:n_men]


async def beijing(w: World) -> str:
    return await w.new_period(period_doc("beijing-2014.yaml"))


def unit_roster() -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Four workers of a unit of four (below 30 staff: all of them must join)."""
    [a, d], [b, c] = by_sex(2, 2)
    rows = [
        {**a, "plans": ["inpatient", "women", "critical"], "shares": 2},  # (50 + 20 + 90) x 2 = 320.00
        {**b, "plans": ["inpatient", "allowance", "accident", "child-accident"]},  # 120.00
        {**c},  # no premium plan: 京卡 only, 0.00
        {**d, "plans": ["allowance"], "shares": 3},  # 30 x 3 = 90.00
    ]
    return rows, {**roster_body(rows), "payers": {"employer": "0.5", "union": "0.3", "member": "0.2"}}


async def test_a_beijing_roster_pays_fee_times_shares_split_by_the_units_payers_and_covers_everyone_with_jingka(
        world: World) -> None:
    period = await beijing(world)
    rows, body = unit_roster()
    r = await world.submit(body, period=period)
    assert r.status_code == 201, r.text
    roster = r.json()
    assert roster["fee_total"] == "530.00"
    assert roster["fee_split"] == {"employer": "265.00", "union": "159.00", "member": "106.00"}
    r = await world.pay(roster["roster_id"], "530.00")
    assert r.status_code == 200 and r.json()["status"] == "active", r.text
    plans = []
    for row in rows:
        [found] = await world.find(row["certno"])
        plans.append(sorted(c["plan"] for c in found["coverages"]))
    assert plans == [["critical", "inpatient", "jingka", "women"],
                     ["accident", "allowance", "child-accident", "inpatient", "jingka"],
                     ["jingka"], ["allowance", "jingka"]]
    # The test's own outbox: one member.covered a row, all of this period.
    sent = [e["payload"] for e in await world.outbox() if e["type"] == "member.covered"]
    assert len(sent) == len(rows) and {p["period"] for p in sent} == {period}
    covered = {p["certno"]: p for p in sent}
    assert [(covered[row["certno"]]["shares"], covered[row["certno"]]["fee"]) for row in rows] == [
        (2, "320.00"), (1, "120.00"), (1, "0.00"), (3, "90.00")]


async def test_a_man_on_the_womens_plan_and_four_shares_are_refused_by_row_and_nothing_is_stored(world: World) -> None:
    period = await beijing(world)
    rows, body = unit_roster()
    body["members"][1]["plans"] = ["inpatient", "women"]  # a man
    body["members"][3]["shares"] = 4  # the rulebook's limit is 3
    before = await world.outbox_count()
    r = await world.submit(body, period=period)
    assert r.status_code == 422 and r.json()["code"] == "roster_rejected", r.text
    assert error_codes(r.json()) == [(["members", 1, "plans"], "plan_sex_mismatch"),
                                     (["members", 3, "shares"], "shares_above_limit")]
    assert r.json()["errors"][0]["msg"] == "第2条：在职女职工特殊疾病互助保障计划仅限女性参加，此人性别为男性。"
    assert [await world.find(row["certno"]) for row in rows] == [[], [], [], []]
    assert await world.outbox_count() == before


async def test_payers_outside_the_rulebooks_or_not_adding_up_to_one_are_refused(world: World) -> None:
    period = await beijing(world)
    _, body = unit_roster()
    r = await world.submit({**body, "payers": {"employer": "0.5", "regional_union": "0.5"}}, period=period)
    assert r.status_code == 422 and error_codes(r.json()) == [(["payers", "regional_union"], "payer_not_allowed")]
    r = await world.submit({**body, "payers": {"employer": "0.5", "member": "0.4"}}, period=period)
    assert r.status_code == 422 and error_codes(r.json()) == [(["payers"], "payer_shares_not_one")]
    # Yunnan's rulebook names no payers: a unit may not choose any.
    _, body = unit_roster()
    for row in body["members"]:
        row.pop("plans", None), row.pop("shares", None)
    r = await world.submit({**body, "payers": {"member": "1"}})
    assert r.status_code == 422 and error_codes(r.json()) == [(["payers"], "payers_not_allowed")]


async def test_a_unit_below_30_staff_must_enrol_every_worker(world: World) -> None:
    period = await beijing(world)
    _, body = unit_roster()
    body["staff"] = {"total": 5, "in_service": 5, "basic_insured_in_service": 5}  # 4 of 5: 80%, not 100%
    r = await world.submit(body, period=period)
    assert r.status_code == 422 and error_codes(r.json()) == [(["staff"], "participation_ratio_too_low")]


async def test_a_file_roster_gives_shares_in_a_column_and_its_payers_in_a_form_field(world: World) -> None:
    period = await beijing(world)
    rows, _ = unit_roster()
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["序号", "姓名", "身份证号码", "手机号码", "性别", "人员类别", "银行账号", "开户银行", "参保险种",
                     "互助项目", "份数"])
    for i, row in enumerate(rows, start=1):
        writer.writerow([i, row["name"], row["certno"], row["phone"], "女" if row["sex"] == "female" else "男", "在职",
                         row["bank_account"], row["bank_name"], "基本医疗保险", "；".join(row.get("plans", [])),
                         row.get("shares", "")])
    staff = {"staff_total": "4", "staff_in_service": "4", "staff_basic_insured_in_service": "4"}
    r = await world.client.post(f"/api/v1/periods/{period}/units/{world.tree.unit}/rosters", headers=world.admin,
                                files={"file": ("北京名单.csv", out.getvalue().encode("utf-8-sig"), "text/csv")},
                                data={**staff, "payers": "行政:0.6；个人:0.4"})
    assert r.status_code == 201, r.text
    assert (r.json()["fee_total"], r.json()["fee_split"]) == ("530.00", {"employer": "318.00", "member": "212.00"})
    r = await world.client.post(f"/api/v1/periods/{period}/units/{world.tree.sibling}/rosters", headers=world.admin,
                                files={"file": ("名单.csv", out.getvalue().encode(), "text/csv")},
                                data={**staff, "payers": "行政=一半"})
    assert r.status_code == 422 and error_codes(r.json()) == [(["body", "payers"], "invalid_payers")]
