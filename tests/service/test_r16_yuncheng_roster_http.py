"""运城 (seed 001) rosters over HTTP: the staff counts of 31 May ("人数以当年5月31日人数为准") and no in-service
worker past the legal retirement age ("在职职工（不包括达到法定退休年龄的人员）"), from the ID number."""

from __future__ import annotations

import random
import uuid
from datetime import date, timedelta
from typing import Any

from deploy.people import certno
from services.enrollment.domain.roster_rules import headcount_day
from tests.service.test_enrollment import (
    TODAY,
    World,
    admin,  # noqa: F401 (fixture used by name)
    error_codes,
    people,
    period_doc,
    roster_body,
    world,  # noqa: F401 (fixture used by name)
)

DUE = headcount_day("05-31", TODAY)


def aged(years: int, sex: str) -> dict[str, Any]:
    """A worker ``years`` old today (a fresh ID number of 运城市盐湖区)."""
    [p] = people(1)
    born = TODAY.replace(year=TODAY.year - years, day=1) - timedelta(days=40)
    return {**p, "sex": sex, "certno": certno(random.Random(uuid.uuid4().int), region="140802", sex=sex, born=born)}


async def yuncheng(w: World) -> str:
    return await w.new_period(period_doc("yuncheng-2024.yaml"))


async def test_a_roster_gives_the_staff_count_of_the_latest_31_may_and_is_refused_without_it(world: World) -> None:
    period = await yuncheng(world)
    rows = [aged(35, "male"), aged(41, "female")]
    body = roster_body(rows)
    r = await world.submit(body, period=period)
    assert r.status_code == 422 and error_codes(r.json()) == [(["staff", "as_of"], "headcount_date_missing")]
    assert r.json()["errors"][0]["expected"] == DUE.isoformat()
    body["staff"]["as_of"] = (DUE - timedelta(days=1)).isoformat()
    r = await world.submit(body, period=period)
    assert r.status_code == 422 and error_codes(r.json()) == [(["staff", "as_of"], "headcount_date_wrong")]
    body["staff"]["as_of"] = DUE.isoformat()
    r = await world.submit(body, period=period)
    assert r.status_code == 201 and r.json()["fee_total"] == "100.00", r.text  # "每人每年50元"


async def test_an_in_service_worker_past_the_legal_retirement_age_is_refused_by_row(world: World) -> None:
    period = await yuncheng(world)
    rows = [aged(44, "male"), aged(66, "male"), aged(59, "female"), aged(52, "female")]
    body = roster_body(rows)
    body["staff"]["as_of"] = DUE.isoformat()
    r = await world.submit(body, period=period)
    # A man of 66 is past even the reformed 63; a woman of 59 past 58. The woman of 52 is short of 55.
    assert r.status_code == 422 and error_codes(r.json()) == [(["members", 1, "certno"], "past_retirement_age"),
                                                              (["members", 2, "certno"], "past_retirement_age")]
    assert date.fromisoformat(r.json()["errors"][0]["retires_on"]) <= TODAY
    assert [await world.find(row["certno"]) for row in rows] == [[], [], [], []]


async def test_a_file_roster_gives_the_day_of_its_staff_count_in_the_form_field_staff_as_of(world: World) -> None:
    period = await yuncheng(world)
    rows = [aged(30, "female"), aged(48, "male")]
    lines = ["姓名,身份证号码,手机号码,性别,人员类别,银行账号,开户银行"] + [
        f"{p['name']},{p['certno']},{p['phone']},{'女' if p['sex'] == 'female' else '男'},在职,{p['bank_account']},"
        f"{p['bank_name']}" for p in rows]
    data = "\n".join(lines).encode("gb18030")

    async def send(as_of: str) -> Any:
        return await world.client.post(
            f"/api/v1/periods/{period}/units/{world.tree.unit}/rosters", headers=world.admin,
            files={"file": ("运城名单.csv", data, "text/csv")},
            data={"staff_total": "2", "staff_in_service": "2", "staff_basic_insured_in_service": "0",
                  "staff_as_of": as_of})

    r = await send("5月31日")
    assert r.status_code == 422 and error_codes(r.json()) == [(["body", "staff_as_of"], "invalid_staff_as_of")]
    r = await send(DUE.isoformat())
    assert r.status_code == 201, r.text
    stored = await world.client.get(f"/api/v1/rosters/{r.json()['roster_id']}", headers=world.admin)
    assert stored.status_code == 200 and stored.json()["members"] == 2
