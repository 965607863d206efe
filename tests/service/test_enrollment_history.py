"""The previous period, before the system existed (issue #8, item 2), over HTTP against a real PostgreSQL:
``POST /api/v1/periods/{code}/history`` records who was covered in a past period (JSON or CSV/XLSX with
Chinese headings) and whether they received aid; renewal fees (seed 003 第四条: 120 for members of the
previous period, 150 for new), the retiree rule (第一条, from the 19th period) and loyalty (第十五条) then
count it. Until it is imported, a roster of the next period is warned that every fee is the new fee.

People are realistic: ID numbers of people born 1950-2008 with Yunnan district codes (五华区, 盘龙区, 官渡区,
西山区, 呈贡县, 个旧市, 楚雄市 …), a correct GB 11643 check digit and the sex digit; each is drawn again until the
project's ID check accepts it (today that check wants the region code valid in the year of birth, so the
older people come from the codes that existed then)."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta
from typing import Any

from openpyxl import Workbook
from sqlalchemy import select
from stdnum.cn import ric

from deploy.people import person
from services.enrollment.models import AuditEntry, PeriodHistory
from tests.conftest import token_for
from tests.service.test_enrollment import (
    CHINESE,
    RNG,
    TODAY,
    USED_CERTNOS,
    World,
    admin,  # noqa: F401 (fixture used by name)
    enrol,
    enrol_and_pay,
    period_doc,
    roster_body,
    uid,
    world,  # noqa: F401 (fixture used by name)
)
from tests.service.test_enrollment_lifecycle import XLSX, events, granted, member_id

DISTRICTS = ["530102", "530103", "530111", "530112", "530113", "530121", "530181", "530302", "530402", "532301",
             "532501"]
TYPE_ZH = {"in_service": "在职", "retired": "退休"}
HEADINGS = ["序号", "姓名", "身份证号码", "单位代码", "人员类别", "是否获得补助"]


def realistic(member_type: str = "in_service") -> dict[str, Any]:
    """A person (deploy.people) with an ID number of a Yunnan district, born 1950-1968 if retired, 1969-2008
    if in service; unique in the test session."""
    first, last = (date(1950, 1, 1), date(1968, 12, 31)) if member_type == "retired" else \
        (date(1969, 1, 1), date(2008, 6, 30))
    while True:
        p = person(RNG, member_type)
        born = first + timedelta(days=RNG.randrange((last - first).days))
        seq = RNG.randrange(0, 998)
        seq = seq - seq % 2 + (1 if p["sex"] == "male" else 0)  # the 17th digit: odd for men, even for women
        body = f"{RNG.choice(DISTRICTS)}{born:%Y%m%d}{seq:03d}"
        certno = body + ric.calc_check_digit(body + "0")
        if certno not in USED_CERTNOS:  # any district code of any year is accepted (shared/idnumber.py)
            USED_CERTNOS.add(certno)
            return {**p, "certno": certno}


def crowd(n: int, member_type: str = "in_service") -> list[dict[str, Any]]:
    return [realistic(member_type) for _ in range(n)]


def history(members: list[dict[str, Any]], unit: str, aid: set[str] | None = None) -> dict[str, Any]:
    return {"members": [{"certno": m["certno"], "unit": unit, "member_type": m["member_type"],
                         "aid_received": m["certno"] in (aid or set())} for m in members]}


async def past_period(w: World, source: str = "yunnan-18.yaml", *, previous: str | None = None,
                      number: int = 17) -> str:
    doc = period_doc(source, previous=previous, window_open=False)
    doc["code"] = f"yn-{number}-{uid()}"
    return await w.new_period(doc)


async def current_period(w: World, previous: str, source: str = "yunnan-18.yaml", number: int = 18) -> str:
    doc = period_doc(source, previous=previous)
    doc["code"] = f"yn-{number}-{uid()}"
    return await w.new_period(doc)


async def import_json(w: World, period: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
    return await w.client.post(f"/api/v1/periods/{period}/history", json=body, headers=headers or w.admin)


async def import_file(w: World, period: str, data: bytes, *, filename: str = "第十七期参互名单.csv",
                      media: str = "text/csv") -> Any:
    return await w.client.post(f"/api/v1/periods/{period}/history", headers=w.admin,
                               files={"file": (filename, data, media)})


def csv_bytes(lines: list[list[str]], encoding: str = "utf-8-sig") -> bytes:
    out = io.StringIO()
    csv.writer(out).writerows(lines)
    return out.getvalue().encode(encoding)


def file_lines(members: list[dict[str, Any]], unit: str, aid: set[str] | None = None) -> list[list[str]]:
    return [HEADINGS] + [[str(n), m["name"], m["certno"], unit, TYPE_ZH[m["member_type"]],
                          "是" if m["certno"] in (aid or set()) else "否"] for n, m in enumerate(members, start=1)]


def codes(body: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [(e["loc"], e["code"], e.get("line")) for e in body["errors"]]


async def stored(w: World, period: str) -> dict[str, tuple[str, str, bool]]:
    async with w.app.state.db.transaction() as session:
        rows = (await session.execute(select(PeriodHistory).where(PeriodHistory.period == period))).scalars()
        return {r.certno: (r.unit, r.member_type, r.aid_received) for r in rows}


# --- renewal fees (第四条) -----------------------------------------------------------------------------------
async def test_a_history_import_turns_a_150_new_fee_into_the_120_renewal_fee(world: World) -> None:
    p17 = await past_period(world)
    veteran, newcomer = crowd(2)
    # Before the import the 17th period has nobody: every fee is the new fee, and the roster says why.
    before = await enrol(world, [veteran], period=await current_period(world, p17))
    assert before["fee_total"] == "150.00"
    [warning] = before["warnings"]
    assert warning["code"] == "previous_period_empty" and warning["loc"] == ["previous_period"]
    assert p17 in warning["msg"] and "新参互" in warning["msg"] and CHINESE.search(warning["msg"])

    r = await import_json(world, p17, history([veteran], world.tree.unit))
    assert r.status_code == 200, r.text
    assert r.json() == {"period": p17, "members": 1, "added": 1, "updated": 0, "unchanged": 0}
    after = await enrol_and_pay(world, [veteran, newcomer], period=await current_period(world, p17))
    assert after["fee_total"] == "270.00"  # 120.00 renewal (member of the 17th period) + 150.00 new
    covered = {e["certno"]: (e["renewing"], e["fee"]) for e in await events(world, "member.covered")
               if e["period"] == after["period"]}
    assert covered == {veteran["certno"]: (True, "120.00"), newcomer["certno"]: (False, "150.00")}


async def test_a_previous_period_that_is_not_in_the_system_warns_once_and_per_retiree(world: World) -> None:
    # Kept from before: with no previous period to look in, the retiree rule warns per retiree, never refuses.
    doc = period_doc("yunnan-19.yaml", previous=f"yn-18-missing-{uid()}")
    p19 = await world.new_period(doc)
    retiree = realistic("retired")
    r = await world.submit(roster_body([*crowd(2), retiree]), period=p19)
    assert r.status_code == 201, r.text
    assert r.json()["fee_total"] == "450.00"
    assert [w["code"] for w in r.json()["warnings"]] == ["previous_period_missing", "retiree_renewal_unverified"]
    assert r.json()["warnings"][1]["loc"][2] == "member_type"


# --- the retiree rule (第一条, from the 19th period) ---------------------------------------------------------
async def test_the_retiree_rule_reads_the_imported_history(world: World) -> None:
    p18 = await past_period(world, number=18)
    p19 = await current_period(world, p18, "yunnan-19.yaml", number=19)
    workers, (stayed, skipped) = crowd(2), crowd(2, "retired")
    # Nothing imported yet: the rule cannot be checked, so each retiree is a warning, not a refusal.
    r = await world.submit(roster_body([*crowd(2), realistic("retired")]), period=p19, unit=world.tree.other_unit)
    assert r.status_code == 201, r.text
    assert [w["code"] for w in r.json()["warnings"]] == ["previous_period_empty", "retiree_renewal_unverified"]

    r = await import_json(world, p18, history([*workers, stayed], world.tree.unit))
    assert r.status_code == 200 and r.json()["added"] == 3, r.text
    refused = await world.submit(roster_body([*workers, stayed, skipped]), period=p19)
    assert refused.status_code == 422, refused.text
    [error] = refused.json()["errors"]
    assert error["code"] == "retiree_not_renewing" and error["loc"][2] == "member_type"
    assert await world.find(stayed["certno"]) == []  # refused whole
    accepted = await world.submit(roster_body([*workers, stayed]), period=p19)
    assert accepted.status_code == 201, accepted.text
    assert accepted.json()["fee_total"] == "360.00" and accepted.json()["warnings"] == []  # 3 x 120 renewal


# --- loyalty (第十五条) ---------------------------------------------------------------------------------------
async def test_loyalty_counts_periods_from_history_with_their_aid_and_from_the_system(world: World) -> None:
    # 15th-17th ran on paper. A: in all three, no aid. B: in all three, aid in the 16th. C: only 16th and 17th.
    # D: 15th and 16th on paper, the 17th entered into the system by a roster: one person, matched by ID number.
    a, b, c, d = people = crowd(4)
    p15 = await past_period(world, number=15)
    p16 = await past_period(world, previous=p15, number=16)
    p17 = await past_period(world, previous=p16, number=17)
    unit = world.tree.unit
    assert (await import_json(world, p15, history([a, b, d], unit))).status_code == 200
    assert (await import_json(world, p16, history([a, b, c, d], unit, aid={b["certno"]}))).status_code == 200
    assert (await import_json(world, p17, history([a, b, c], unit))).status_code == 200
    # D's own unit enters them late; a roster of another unit would be refused (member_of_another_unit, issue #9).
    late = await world.submit(roster_body([d]), period=p17, late_reason="补录第十七期纸质名单")
    assert late.status_code == 201, late.text
    assert late.json()["fee_total"] == "120.00"  # D was in the 16th period (history): renewal fee
    # paid on time: the bank's date is inside the 17th period's enrolment window (第五条)
    paid = await world.pay(late.json()["roster_id"], "120.00", paid_at=TODAY - timedelta(days=35))
    assert paid.json()["status"] == "active", paid.text

    p18 = await current_period(world, p17)
    roster = await enrol_and_pay(world, people, period=p18)
    assert roster["fee_total"] == "480.00"  # all four were covered in the 17th period
    ids = {p["certno"]: await member_id(world, p["certno"]) for p in people}
    assert await granted(world, p18) == sorted([ids[a["certno"]], ids[d["certno"]]])
    grants = [e for e in await events(world, "member.loyalty_granted") if e["period"] == p18]
    assert sorted(e["member_id"] for e in grants) == sorted([ids[a["certno"]], ids[d["certno"]]])
    assert all(e["periods_without_aid"] == [p17, p16, p15] for e in grants)


# --- bad rows, named as staff see them -------------------------------------------------------------------
async def test_a_json_import_with_bad_rows_is_refused_whole_naming_each_by_its_index(world: World) -> None:
    p17 = await past_period(world, "yunnan-18.yaml")
    ok, other, retiree = crowd(2) + crowd(1, "retired")
    body = history([ok, other, retiree], world.tree.unit)["members"]
    wrong_digit = dict(body[1], certno=other["certno"][:-1] + ("1" if other["certno"][-1] != "1" else "2"))
    rows = [body[0], wrong_digit, dict(body[0]),  # index 2: ok again
            dict(body[2], unit="NO-SUCH-UNIT"), dict(body[2], aid_received="是", certno=realistic()["certno"]),
            {"certno": realistic()["certno"], "unit": world.tree.unit, "member_type": "in_service"}]
    r = await import_json(world, p17, {"members": rows})
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "history_rejected" and CHINESE.search(r.json()["detail"])
    assert codes(r.json()) == [
        (["members", 1, "certno"], "invalid_certno", None),
        (["members", 2, "certno"], "duplicate_person", None),
        (["members", 3, "unit"], "unit_not_found", None),
        (["members", 4, "aid_received"], "invalid_aid_received", None),
        (["members", 5, "aid_received"], "missing_field", None),
    ]
    msgs = [e["msg"] for e in r.json()["errors"]]
    assert [m.split("：")[0] for m in msgs] == ["第2条", "第3条", "第4条", "第5条", "第6条"]
    assert "第1条" in msgs[1]  # the duplicate names the row it repeats
    assert await stored(world, p17) == {}


async def test_a_period_for_in_service_staff_only_refuses_a_retiree_in_its_history(world: World) -> None:
    doc = period_doc(member_types=["in_service"], window_open=False)
    period = await world.new_period(doc)
    r = await import_json(world, period, history([*crowd(1), realistic("retired")], world.tree.unit))
    assert r.status_code == 422
    assert codes(r.json()) == [(["members", 1, "member_type"], "member_type_not_allowed", None)]


async def test_a_csv_import_with_bad_rows_names_each_by_its_spreadsheet_line(world: World) -> None:
    p17 = await past_period(world)
    a, b, c, d = crowd(4)
    lines = [["云南省第十七期职工医疗互助参互人员名单"], *file_lines([a, b], world.tree.unit)]  # title on line 1
    lines += [[],  # line 5 is blank
              ["3", c["name"], c["certno"][:-1] + ("1" if c["certno"][-1] != "1" else "2"), world.tree.unit,
               "在职", "否"],  # line 6
              ["4", d["name"], d["certno"], world.tree.unit, "临时工", "不详"],  # line 7
              ["5", a["name"], a["certno"], world.tree.unit, "在职", "是"],  # line 8: a again
              ["6", "", "5.30102E+17", world.tree.unit, "在职", "否"]]  # line 9: Excel made a number of it
    r = await import_file(world, p17, csv_bytes(lines, "gb18030"))  # as Excel on Chinese Windows saves it
    assert r.status_code == 422, r.text
    assert codes(r.json()) == [
        (["members", 2, "certno"], "invalid_certno", 6),
        (["members", 3, "member_type"], "invalid_member_type", 7),
        (["members", 3, "aid_received"], "invalid_aid_received", 7),
        (["members", 4, "certno"], "duplicate_person", 8),
        (["members", 5, "certno"], "number_not_text", 9),
    ]
    msgs = [e["msg"] for e in r.json()["errors"]]
    assert [m.split("：")[0] for m in msgs] == ["第6行", "第7行", "第7行", "第8行", "第9行"]
    assert "第3行" in msgs[3]  # a was on line 3
    assert await stored(world, p17) == {}


async def test_a_csv_without_the_aid_column_is_refused_naming_the_column(world: World) -> None:
    p17 = await past_period(world)
    lines = [row[:5] for row in file_lines(crowd(2), world.tree.unit)]
    r = await import_file(world, p17, csv_bytes(lines))
    assert r.status_code == 422
    assert codes(r.json()) == [(["file", "是否获得补助"], "missing_column", 1)]


async def test_an_xlsx_history_made_in_excel_is_imported(world: World) -> None:
    p17 = await past_period(world)
    members = [*crowd(2), realistic("retired")]
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    for row in file_lines(members, world.tree.unit, aid={members[1]["certno"]}):
        sheet.append(row)
    sheet.append([None] * 6)  # Excel keeps formatted empty rows
    out = io.BytesIO()
    book.save(out)
    r = await import_file(world, p17, out.getvalue(), filename="第十七期.xlsx", media=XLSX)
    assert r.status_code == 200, r.text
    assert r.json()["added"] == 3
    assert await stored(world, p17) == {
        members[0]["certno"]: (world.tree.unit, "in_service", False),
        members[1]["certno"]: (world.tree.unit, "in_service", True),
        members[2]["certno"]: (world.tree.unit, "retired", False)}


async def test_an_id_number_stored_as_a_number_in_xlsx_is_refused_never_guessed(world: World) -> None:
    p17 = await past_period(world)
    a, b = crowd(2)
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(HEADINGS)
    sheet.append([1, a["name"], a["certno"], world.tree.unit, "在职", "否"])
    sheet.append([2, b["name"], int(b["certno"][:15]) * 1000, world.tree.unit, "在职", "否"])  # lost its digits
    out = io.BytesIO()
    book.save(out)
    r = await import_file(world, p17, out.getvalue(), filename="名单.xlsx", media=XLSX)
    assert r.status_code == 422
    assert codes(r.json()) == [(["members", 1, "certno"], "number_not_text", 3)]


# --- who may, when, and again --------------------------------------------------------------------------
async def test_only_the_admin_may_import_history(world: World) -> None:
    p17 = await past_period(world)
    t = world.tree
    body = history(crowd(1), t.unit)
    others = [token_for("centre_reviewer", org=t.centre, org_path=(t.centre,), org_level="centre"),
              token_for("finance", org=t.centre, org_path=(t.centre,), org_level="centre"),
              t.agent(t.unit)]
    for headers in others:
        r = await import_json(world, p17, body, headers)
        assert r.status_code == 403, r.text
    assert (await world.client.post(f"/api/v1/periods/{p17}/history", json=body)).status_code == 401
    assert await stored(world, p17) == {}


async def test_history_is_only_for_an_existing_period_whose_enrolment_has_closed(world: World) -> None:
    body = history(crowd(1), world.tree.unit)
    open_now = await import_json(world, world.period, body)
    assert open_now.status_code == 409 and open_now.json()["code"] == "period_not_past"
    missing = await import_json(world, f"yn-17-{uid()}", body)
    assert missing.status_code == 404 and missing.json()["code"] == "period_not_found"


async def test_importing_again_keeps_one_record_per_person_and_audits_each_change(world: World) -> None:
    p17 = await past_period(world)
    a, b, c = crowd(3)
    unit = world.tree.unit
    first = await import_json(world, p17, history([a, b], unit))
    assert first.json() == {"period": p17, "members": 2, "added": 2, "updated": 0, "unchanged": 0}
    again = await import_json(world, p17, history([a, b], unit))
    assert again.json() == {"period": p17, "members": 2, "added": 0, "updated": 0, "unchanged": 2}
    # The next office's file: b did receive aid (the paper record was corrected), c is new; a is not in it.
    third = await import_file(world, p17, csv_bytes(file_lines([b, c], world.tree.sibling, aid={b["certno"]})))
    assert third.status_code == 200, third.text
    assert third.json() == {"period": p17, "members": 2, "added": 1, "updated": 1, "unchanged": 0}
    assert await stored(world, p17) == {a["certno"]: (unit, "in_service", False),
                                        b["certno"]: (world.tree.sibling, "in_service", True),
                                        c["certno"]: (world.tree.sibling, "in_service", False)}
    async with world.app.state.db.transaction() as session:
        audit = (await session.execute(select(AuditEntry).where(AuditEntry.subject == p17)
                                       .order_by(AuditEntry.at))).scalars().all()
    assert [e.action for e in audit] == ["period.create", "period.history_import", "period.history_import",
                                         "period.history_change", "period.history_import"]
    change = audit[3].detail
    assert change == {"certno": b["certno"],
                      "before": {"unit": unit, "member_type": "in_service", "aid_received": False},
                      "after": {"unit": world.tree.sibling, "member_type": "in_service", "aid_received": True}}
    assert audit[4].detail == {"source": "file:第十七期参互名单.csv", "members": 2, "added": 1, "updated": 1,
                               "unchanged": 0}
    assert all(e.actor == "admin" for e in audit)


async def test_an_empty_or_shapeless_body_is_refused(world: World) -> None:
    p17 = await past_period(world)
    empty = await import_json(world, p17, {"members": []})
    assert empty.status_code == 422 and codes(empty.json()) == [(["members"], "empty_roster", None)]
    shapeless = await import_json(world, p17, {"people": []})
    assert shapeless.status_code == 422 and shapeless.json()["code"] == "history_rejected"
    assert {tuple(e["loc"]) for e in shapeless.json()["errors"]} == {("body", "members"), ("body", "people")}
    header_only = await import_file(world, p17, csv_bytes([HEADINGS]))
    assert header_only.status_code == 422 and [e["code"] for e in header_only.json()["errors"]] == ["empty_roster"]
