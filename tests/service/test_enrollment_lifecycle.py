"""Enrollment after the roster, over HTTP against a real PostgreSQL: roster files (CSV, XLSX), the fee split
between payers (seed 004), withdrawal (seed 003 第十四条), contact changes, corrections, remittances by offices
(第五条, docs/DOMAIN.md "the amount remitted must equal the enrolment data"), loyalty (第十五条) and idempotent
payments.

Each test runs in a transaction rolled back at its end (``rolled_back``, tests/conftest.py) and sees only its
own rows."""

from __future__ import annotations

import csv
import io
import random
import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

from openpyxl import Workbook
from sqlalchemy import select

from deploy.people import luhn_account
from services.enrollment.models import LoyaltyGrant
from shared.events import ClaimApproved
from tests.conftest import apply_event, token_for
from tests.service.test_enrollment import (
    CHINESE,
    TODAY,
    Headers,
    Tree,
    World,
    admin,  # noqa: F401 (fixture used by name)
    enrol,
    enrol_and_pay,
    error_codes,
    iso,
    people,
    period_doc,
    roster_body,
    uid,
    world,  # noqa: F401 (fixture used by name)
)

FILE_HEADINGS = ["姓名", "身份证号码", "手机号码", "性别", "人员类别", "银行账号", "开户银行", "参保险种"]
SEX_ZH = {"male": "男", "female": "女"}
TYPE_ZH = {"in_service": "在职", "retired": "退休"}
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
STAFF_3 = {"staff_total": "3", "staff_in_service": "3", "staff_basic_insured_in_service": "3"}


def finance(tree: Tree) -> Headers:
    return token_for("finance", org=tree.centre, org_path=(tree.centre,), org_level="centre")


def file_rows(members: list[dict[str, Any]]) -> list[list[str]]:
    return [FILE_HEADINGS] + [[m["name"], m["certno"], m["phone"], SEX_ZH[m["sex"]], TYPE_ZH[m["member_type"]],
                               m["bank_account"], m["bank_name"], "基本医疗保险;大病补充医疗保险"] for m in members]


def roster_csv(members: list[dict[str, Any]], encoding: str = "utf-8") -> bytes:
    out = io.StringIO()
    csv.writer(out).writerows(file_rows(members))
    return out.getvalue().encode(encoding)


def roster_xlsx(members: list[dict[str, Any]]) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    for row in file_rows(members):
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


async def upload(w: World, data: bytes, *, filename: str = "名单.csv", media: str = "text/csv",
                 staff: dict[str, str] | None = None, unit: str | None = None) -> Any:
    return await w.client.post(f"/api/v1/periods/{w.period}/units/{unit or w.tree.unit}/rosters", headers=w.admin,
                               files={"file": (filename, data, media)}, data=STAFF_3 if staff is None else staff)


async def member_id(w: World, certno: str) -> str:
    [found] = await w.find(certno)
    return str(found["member_id"])


async def events(w: World, kind: str, **match: Any) -> list[dict[str, Any]]:
    return [e["payload"] for e in await w.outbox()
            if e["type"] == kind and all(e["payload"].get(k) == v for k, v in match.items())]


# --- roster files ---------------------------------------------------------------------------------------
async def test_a_csv_roster_with_chinese_headings_costs_what_the_same_json_roster_costs(world: World) -> None:
    from_file, from_json = people(3), people(3)
    from_file[0]["sex"], from_file[1]["sex"] = "male", "female"
    r = await upload(world, roster_csv(from_file))
    assert r.status_code == 201, r.text
    as_json = await enrol(world, from_json, unit=world.tree.sibling)
    assert r.json()["status"] == "awaiting_payment" and r.json()["members"] == 3
    assert r.json()["fee_total"] == as_json["fee_total"] == "450.00"
    agent = world.tree.agent(world.tree.unit)  # sees personal data whole by an audited reveal
    for person in from_file:
        stored = await world.whole(person["certno"], agent)
        assert (stored["name"], stored["sex"], stored["member_type"], stored["bank_account"]) == \
            (person["name"], person["sex"], "in_service", person["bank_account"])


async def test_an_xlsx_roster_made_in_excel_is_accepted(world: World) -> None:
    members = people(3)
    r = await upload(world, roster_xlsx(members), filename="名单.xlsx", media=XLSX)
    assert r.status_code == 201, r.text
    assert r.json()["members"] == 3 and r.json()["fee_total"] == "450.00"
    assert [s["name"] for m in members for s in await world.find(m["certno"])] == [m["name"] for m in members]


async def test_a_csv_with_a_bad_id_number_is_refused_whole_naming_its_row(world: World) -> None:
    members = people(3)
    c = members[1]["certno"]
    members[1]["certno"] = c[:-1] + ("1" if c[-1] != "1" else "2")
    before = await world.outbox_count()
    r = await upload(world, roster_csv(members))
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "roster_rejected" and CHINESE.search(r.json()["detail"])
    assert error_codes(r.json()) == [(["members", 1, "certno"], "invalid_certno")]
    [error] = r.json()["errors"]  # the second member is on the file's third line (the header is line 1)
    assert error["line"] == 3 and error["msg"].startswith("第3行：") and error["reason"] == "check_digit"
    for valid in (members[0], members[2]):
        assert await world.find(valid["certno"]) == []
    assert await world.outbox_count() == before


async def test_a_csv_without_the_staff_counts_is_refused_naming_the_missing_field(world: World) -> None:
    members = people(3)
    r = await upload(world, roster_csv(members), staff={"staff_total": "3", "staff_basic_insured_in_service": "3"})
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "roster_rejected"
    assert [e["loc"] for e in r.json()["errors"]] == [["body", "staff_in_service"]]
    assert await world.find(members[0]["certno"]) == []


async def test_a_csv_saved_by_chinese_windows_excel_in_gb18030_is_read(world: World) -> None:
    members = people(3)
    r = await upload(world, roster_csv(members, "gb18030"))
    assert r.status_code == 201, r.text
    [stored] = await world.find(members[2]["certno"])
    assert stored["name"] == members[2]["name"] and stored["bank_name"] == members[2]["bank_name"]


# --- fee split (seed 004) -------------------------------------------------------------------------------
async def test_inner_mongolian_fees_are_split_between_payers_with_xinkang_paid_by_the_employer(world: World) -> None:
    # The 50/10/10/30 split and 馨康 paid by the administration are 森工集团's (seed 004).
    period = await world.new_period(period_doc("neimenggu-2019-sengong.yaml"))
    woman, man = people(2)
    while woman["sex"] != "female":  # 馨康 goes by the sex the ID number gives (issue #16)
        [woman] = people(1)
    woman.update(plans=["inpatient", "xinkang"], insurance=["basic_medical"])
    man.update(insurance=["basic_medical"])
    roster = await enrol(world, [woman, man], period=period)
    expected = {"employer": "135.00", "company_union": "20.00", "regional_union": "20.00", "member": "60.00"}
    assert roster["fee_total"] == "235.00"
    assert roster["fee_split"] == expected
    stored = (await world.client.get(f"/api/v1/rosters/{roster['roster_id']}", headers=world.admin)).json()
    assert stored["fee_split"] == expected
    assert sum(Decimal(v) for v in stored["fee_split"].values()) == Decimal(stored["fee_total"])


# --- withdrawal (第十四条) --------------------------------------------------------------------------------
async def test_a_withdrawal_ends_coverage_from_that_day_without_refund(world: World) -> None:
    person = people(1)[0]
    await enrol_and_pay(world, [person])
    mid = await member_id(world, person["certno"])
    on = TODAY + timedelta(days=40)
    body = {"date": iso(on), "reason": "退出基本医疗保险"}
    stranger = await world.client.post(f"/api/v1/members/{mid}/withdrawal", json=body,
                                       headers=world.tree.agent(world.tree.sibling))
    assert stranger.status_code == 403 and stranger.json()["code"] == "outside_subtree"
    r = await world.client.post(f"/api/v1/members/{mid}/withdrawal", json=body,
                                headers=world.tree.agent(world.tree.unit))
    assert r.status_code == 200, r.text
    assert r.json() == {"member_id": mid, "withdrawn_on": iso(on), "periods": [world.period], "refund": "0.00"}
    member = (await world.client.get(f"/api/v1/members/{mid}", headers=world.admin)).json()
    assert [c["status"] for c in member["coverages"]] == ["withdrawn"]
    assert [(e["period"], e["ended_on"]) for e in await events(world, "member.coverage_ended", member_id=mid)] == \
        [(world.period, iso(on))]
    again = await world.client.post(f"/api/v1/members/{mid}/withdrawal", json=body, headers=world.admin)
    assert again.status_code == 409
    assert len(await events(world, "member.coverage_ended", member_id=mid)) == 1


async def test_a_withdrawal_before_the_coverage_window_opens_leaves_no_aid_rights_in_that_period(
        world: World) -> None:
    # 第十四条: rights end from the day of leaving basic medical insurance. Someone who paid in the enrolment
    # window and left before coverage began has no rights in the period at all.
    person = people(1)[0]
    await enrol_and_pay(world, [person])
    mid = await member_id(world, person["certno"])
    r = await world.client.post(f"/api/v1/members/{mid}/withdrawal", headers=world.tree.agent(world.tree.unit),
                                json={"date": iso(TODAY + timedelta(days=2)), "reason": "调离本单位，停保"})
    assert r.status_code == 200, r.text
    member = (await world.client.get(f"/api/v1/members/{mid}", headers=world.admin)).json()
    assert [c["status"] for c in member["coverages"]] == ["withdrawn"]
    assert len(await events(world, "member.coverage_ended", member_id=mid)) == 1


# --- contact change -------------------------------------------------------------------------------------
async def test_the_unit_agent_changes_a_bank_account_audited_masked_and_announced(world: World) -> None:
    person = people(1)[0]
    await enrol_and_pay(world, [person])
    mid = await member_id(world, person["certno"])
    agent = world.tree.agent(world.tree.unit)
    new_account = luhn_account(random.Random(uid()), prefix="621700")
    r = await world.client.patch(f"/api/v1/members/{mid}", headers=agent,
                                 json={"bank_account": new_account, "bank_name": "中国建设银行昆明分行"})
    assert r.status_code == 200, r.text
    masked_new = new_account[:4] + "*" * (len(new_account) - 8) + new_account[-4:]
    assert r.json()["bank_account"] == masked_new and r.json()["warnings"] == []  # masked, whoever asks
    [changed] = await events(world, "member.contact_changed", member_id=mid)
    assert (changed["bank_account"], changed["bank_name"]) == (new_account, "中国建设银行昆明分行")
    audit = (await world.client.get(f"/api/v1/members/{mid}/audit", headers=agent)).json()
    [entry] = [a for a in audit if a["action"] == "member.contact_change"]
    old = person["bank_account"]
    assert entry["detail"]["before"]["bank_account"] == old[:4] + "*" * (len(old) - 8) + old[-4:]
    assert entry["detail"]["after"]["bank_account"] == new_account[:4] + "*" * (len(new_account) - 8) + \
        new_account[-4:]
    assert entry["detail"]["before"]["bank_name"] == person["bank_name"]
    assert entry["detail"]["after"]["bank_name"] == "中国建设银行昆明分行"
    assert old not in str(audit) and new_account not in str(audit)
    assert (await world.whole(person["certno"], agent))["bank_account"] == new_account


async def test_a_bank_account_without_its_bank_or_from_another_unit_is_refused(world: World) -> None:
    person = people(1)[0]
    await enrol(world, [person])
    mid = await member_id(world, person["certno"])
    account = people(1)[0]["bank_account"]
    alone = await world.client.patch(f"/api/v1/members/{mid}", headers=world.tree.agent(world.tree.unit),
                                     json={"bank_account": account})
    assert alone.status_code == 422
    stranger = await world.client.patch(f"/api/v1/members/{mid}", headers=world.tree.agent(world.tree.sibling),
                                        json={"bank_account": account, "bank_name": "富滇银行昆明分行"})
    assert stranger.status_code == 403 and stranger.json()["code"] == "outside_subtree"
    unchanged = await world.whole(person["certno"], world.tree.agent(world.tree.unit))
    assert unchanged["bank_account"] == person["bank_account"]
    assert await events(world, "member.contact_changed", member_id=mid) == []


async def test_a_passbook_account_failing_luhn_is_changed_with_a_warning(world: World) -> None:
    person = people(1)[0]
    await enrol(world, [person])
    mid = await member_id(world, person["certno"])
    good = people(1)[0]["bank_account"]
    passbook = good[:-1] + str((int(good[-1]) + 1) % 10)
    r = await world.client.patch(f"/api/v1/members/{mid}", headers=world.tree.agent(world.tree.unit),
                                 json={"bank_account": passbook, "bank_name": "中国农业银行昆明分行"})
    assert r.status_code == 200, r.text
    assert r.json()["bank_account"] == passbook[:4] + "*" * (len(passbook) - 8) + passbook[-4:]
    assert [(w["loc"], w["code"]) for w in r.json()["warnings"]] == [(["body", "bank_account"], "bank_account_luhn")]


# --- corrections ----------------------------------------------------------------------------------------
async def test_the_admin_corrects_a_name_with_a_reason_kept_in_the_audit_log(world: World) -> None:
    person = people(1)[0]
    await enrol(world, [person])
    mid = await member_id(world, person["certno"])
    body = {"period": world.period, "reason": "身份证与名单姓名不一致，按身份证更正", "name": "张建华"}
    agent = await world.client.post(f"/api/v1/members/{mid}/corrections", json=body,
                                    headers=world.tree.agent(world.tree.unit))
    assert agent.status_code == 403
    r = await world.client.post(f"/api/v1/members/{mid}/corrections", json=body, headers=world.admin)
    assert r.status_code == 200, r.text
    assert r.json() == {"member_id": mid, "corrected": ["name"]}
    assert (await world.find(person["certno"]))[0]["name"] == "张建华"
    audit = (await world.client.get(f"/api/v1/members/{mid}/audit", headers=world.admin)).json()
    [entry] = [a for a in audit if a["action"] == "member.correction"]
    assert entry["detail"]["before"] == {"name": person["name"]} and entry["detail"]["after"] == {"name": "张建华"}
    assert entry["detail"]["reason"] == body["reason"] and entry["actor"] == "admin"


async def test_a_correction_to_an_invalid_or_anothers_id_number_is_refused(world: World) -> None:
    person, other = people(2)
    await enrol(world, [person, other])
    mid = await member_id(world, person["certno"])
    c = person["certno"]
    bad = c[:-1] + ("1" if c[-1] != "1" else "2")
    reason = "身份证号码录入错误"
    r = await world.client.post(f"/api/v1/members/{mid}/corrections", headers=world.admin,
                                json={"period": world.period, "reason": reason, "certno": bad})
    assert r.status_code == 422 and r.json()["code"] == "invalid_certno"
    r = await world.client.post(f"/api/v1/members/{mid}/corrections", headers=world.admin,
                                json={"period": world.period, "reason": reason, "certno": other["certno"]})
    assert r.status_code == 409 and r.json()["code"] == "certno_taken"
    assert (await world.find(c))[0]["member_id"] == mid


# --- remittances ----------------------------------------------------------------------------------------
async def remit(w: World, amount: str, office: str | None = None) -> None:
    r = await w.client.post(f"/api/v1/periods/{w.period}/remittances", headers=finance(w.tree), json={
        "office": office or w.tree.office, "amount": amount, "reference": f"HK-{uid()}", "remitted_at": iso(TODAY)})
    assert r.status_code == 201, r.text
    assert r.json()["amount"] == amount and r.json()["office"] == (office or w.tree.office)


async def report(w: World, headers: Headers | None = None) -> dict[str, Any]:
    r = await w.client.get(f"/api/v1/periods/{w.period}/remittance-report", headers=headers or finance(w.tree))
    assert r.status_code == 200, r.text
    return dict(r.json())


async def test_the_remittance_report_compares_what_an_office_received_with_what_it_remitted(world: World) -> None:
    t = world.tree
    await enrol_and_pay(world, people(2), unit=t.unit)  # 300.00 due, all received
    partial = await enrol(world, people(3), unit=t.other_unit)  # 450.00 due
    assert (await world.pay(partial["roster_id"], "200.00")).status_code == 200
    await remit(world, "400.00")

    [office] = (await report(world))["offices"]
    assert office["office"] == t.office
    assert sorted((u["unit"], u["fees_due"], u["fees_received"], u["unpaid"]) for u in office["units"]) == sorted([
        (t.unit, "300.00", "300.00", "0.00"), (t.other_unit, "450.00", "200.00", "250.00")])
    assert (office["fees_due"], office["fees_received"], office["remitted"], office["gap"], office["status"]) == \
        ("750.00", "500.00", "400.00", "100.00", "to_remit")

    await remit(world, "100.00")
    [office] = (await report(world))["offices"]
    assert (office["remitted"], office["gap"], office["status"]) == ("500.00", "0.00", "matched")

    await remit(world, "0.01")
    whole = await report(world)
    [office] = whole["offices"]
    assert (office["remitted"], office["gap"], office["status"]) == ("500.01", "-0.01", "over_remitted")
    assert whole["totals"] == {"fees_due": "750.00", "fees_received": "500.00", "remitted": "500.01", "gap": "-0.01"}


async def test_an_office_reviewer_sees_only_their_own_offices_units_in_the_remittance_report(world: World) -> None:
    t = world.tree
    await enrol_and_pay(world, people(1), unit=t.unit)
    elsewhere = f"{t.centre}-QJ"
    r = await world.client.post("/api/v1/orgs", headers=world.admin,
                                json={"code": elsewhere, "name": "曲靖办事处", "level": "office", "parent": t.centre})
    assert r.status_code == 201, r.text
    other = token_for("office_reviewer", org=elsewhere, org_path=(t.centre, elsewhere), org_level="office")
    assert (await report(world, other))["offices"] == []
    own = token_for("office_reviewer", org=t.office, org_path=(t.centre, t.office), org_level="office")
    assert [u["unit"] for o in (await report(world, own))["offices"] for u in o["units"]] == [t.unit]
    assert [o["office"] for o in (await report(world))["offices"]] == [t.office]
    agent = await world.client.get(f"/api/v1/periods/{world.period}/remittance-report",
                                   headers=world.tree.agent(t.unit))
    assert agent.status_code == 403


async def test_money_remitted_by_an_office_with_no_roster_in_the_period_shows_as_over_remitted(world: World) -> None:
    # The report exists to catch remittances that do not match the enrolment data: an office that sent
    # money while the system holds no roster of its units is the plainest mismatch there is.
    await remit(world, "150.00")
    body = await report(world)
    assert [(o["office"], o["fees_received"], o["remitted"], o["gap"], o["status"]) for o in body["offices"]] == \
        [(world.tree.office, "0.00", "150.00", "-150.00", "over_remitted")]
    assert body["totals"]["remitted"] == "150.00"


# --- loyalty (第十五条) -----------------------------------------------------------------------------------
async def enrol_late_and_pay(w: World, members: list[dict[str, Any]], period: str) -> None:
    """A paper roster of a closed period, paid on time (on the window's last day) and entered late."""
    r = await w.submit(roster_body(members), period=period, late_reason="补录往期已缴费的纸质名单")
    assert r.status_code == 201, r.text
    closed_on = TODAY - timedelta(days=30)  # period_doc(window_open=False): the window closed 30 days ago
    paid = await w.pay(r.json()["roster_id"], r.json()["fee_total"], paid_at=closed_on)
    assert paid.json()["status"] == "active", paid.text


async def approve_aid(w: World, member: str, period: str, amount: str) -> None:
    assert await apply_event(w.app, ClaimApproved(
        claim_id=str(uuid.uuid4()), member_id=member, period=period, plan="inpatient",
        aid_amount=Decimal(amount), rulebook_code=period))


async def loyalty_chain(w: World) -> tuple[list[str], list[dict[str, Any]], list[str]]:
    """Periods 15, 16, 17 (closed, entered late) and 18 (open) linked by previous_period; A and B in 15-17,
    C only in 17. Returns the periods, the people A, B, C and their member ids."""
    a, b, c = people(3)
    chain: list[str] = []
    for n in (15, 16, 17):
        doc = period_doc(previous=chain[-1] if chain else None, window_open=False)
        doc["code"] = f"yn-{n}-{uid()}"
        chain.append(await w.new_period(doc))
        await enrol_late_and_pay(w, [a, b, c] if n == 17 else [a, b], chain[-1])
    doc = period_doc(previous=chain[-1])
    doc["code"] = f"yn-18-{uid()}"
    chain.append(await w.new_period(doc))
    return chain, [a, b, c], [await member_id(w, p["certno"]) for p in (a, b, c)]


async def granted(w: World, period: str) -> list[str]:
    async with w.app.state.db.transaction() as session:
        rows = (await session.execute(select(LoyaltyGrant).where(LoyaltyGrant.period == period))).scalars().all()
    return sorted(str(g.member_id) for g in rows)


async def test_only_a_member_of_three_periods_in_a_row_without_aid_is_granted_the_accident_cover(world: World) -> None:
    (p15, p16, p17, p18), members, (a, b, _) = await loyalty_chain(world)
    await approve_aid(world, a, p16, "500.00")
    await enrol_and_pay(world, members, period=p18)
    assert await granted(world, p18) == [b]
    [event] = [e for e in await events(world, "member.loyalty_granted") if e["period"] == p18]
    assert event == {"member_id": b, "period": p18, "grant": "major_accident_disability_cover",
                     "periods_without_aid": [p17, p16, p15], "version": 1}


async def test_an_approved_claim_of_no_money_is_not_aid_received(world: World) -> None:
    (_, p16, _, p18), members, (a, b, _) = await loyalty_chain(world)
    await approve_aid(world, a, p16, "0.00")
    await enrol_and_pay(world, members, period=p18)
    assert await granted(world, p18) == sorted([a, b])
    assert sorted(e["member_id"] for e in await events(world, "member.loyalty_granted") if e["period"] == p18) == \
        sorted([a, b])


# --- idempotency ----------------------------------------------------------------------------------------
async def test_a_payment_sent_twice_with_one_key_is_counted_once_and_answered_the_same(world: World) -> None:
    roster = await enrol(world, people(2))
    headers = {**finance(world.tree), "Idempotency-Key": f"pay-{uuid.uuid4()}"}
    body = {"amount": "100.00", "reference": f"BANK-{uid()}", "paid_at": iso(TODAY)}
    url = f"/api/v1/rosters/{roster['roster_id']}/payments"
    first = await world.client.post(url, json=body, headers=headers)
    again = await world.client.post(url, json=body, headers=headers)
    assert first.status_code == again.status_code == 200, first.text
    assert again.json() == first.json() and first.json()["paid_total"] == "100.00"
    assert again.headers.get("Idempotent-Replayed") == "true"
    stored = (await world.client.get(f"/api/v1/rosters/{roster['roster_id']}", headers=world.admin)).json()
    assert stored["paid_total"] == "100.00" and stored["status"] == "awaiting_payment"
    assert len(await events(world, "roster.fees_received", roster_id=roster["roster_id"])) == 1
