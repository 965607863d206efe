"""Issue #9, finding 1 (critical), written as the attack was made: a unit agent put another branch's member on
their own roster with a new phone and bank account; the member moved to the attacker's unit and their pending
aid went to the attacker's account. Now: the row is refused, nothing about the member changes, and only an
audited release (or a period rule on changes of employer) moves a person; a roster never changes a stored
account or phone; a payment to a just-changed account is held until a second person in finance confirms it;
the member is told at the phone they had before. Real PostgreSQL; events carried between services through
each one's real inbox path."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select, text

from deploy.people import luhn_account
from services.notifications.models import Notification, Recipient
from shared.events import ClaimApproved, MemberContactChanged, MemberCovered
from tests.conftest import ServiceClient, apply_event, token_for
from tests.service.test_enrollment import (
    TODAY,
    Headers,
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

FINANCE_ID = str(uuid.uuid4())


def finance(user_id: str | None = None, centre: str = "YN") -> Headers:
    return token_for("finance", centre, (centre,), "centre", user_id=user_id)


async def member_of(w: World, certno: str) -> str:
    [found] = await w.find(certno)
    return str(found["member_id"])


async def audit(w: World, member_id: str, headers: Headers | None = None) -> list[dict[str, Any]]:
    r = await w.client.get(f"/api/v1/members/{member_id}/audit", headers=headers or w.admin)
    assert r.status_code == 200, r.text
    return list(r.json())


async def outbox_of(w: World, kind: str, member_id: str) -> list[dict[str, Any]]:
    return [e["payload"] for e in await w.outbox() if e["type"] == kind and e["payload"].get("member_id") == member_id]


async def payments_with_pending_aid(rolled_back: ServiceClient, w: World, member_id: str
                                    ) -> tuple[FastAPI, httpx.AsyncClient, str]:
    """Payments learns the member from enrollment's own member.covered event, then one approved claim."""
    app, client = await rolled_back("payments")
    [covered] = await outbox_of(w, "member.covered", member_id)
    assert await apply_event(app, MemberCovered.model_validate(covered))
    claim_id = str(uuid.uuid4())
    assert await apply_event(app, ClaimApproved(claim_id=claim_id, member_id=member_id, period=covered["period"],
                                                plan="inpatient", aid_amount=Decimal("3460.00"),
                                                rulebook_code="yn-18"))
    return app, client, claim_id


async def instruction(client: httpx.AsyncClient, claim_id: str, centre: str) -> dict[str, Any]:
    """The instruction as finance at the member's centre sees it (finance reads only its branch, issue #9)."""
    r = await client.get("/api/v1/payment-instructions", params={"claim_id": claim_id}, headers=finance(centre=centre))
    assert r.status_code == 200, r.text
    [found] = r.json()
    return dict(found)


async def next_version(w: World, member_id: str) -> int:
    """The member's version after one more change of details (enrollment raises it with each change; payments
    keeps details only from a version at least as new as what it has, issue #11)."""
    [covered] = await outbox_of(w, "member.covered", member_id)
    return int(covered.get("member_version", 0)) + 1


def masked(account: str) -> str:
    return account[:4] + "*" * (len(account) - 8) + account[-4:]


# --- the takeover ---------------------------------------------------------------------------------------
async def test_a_roster_naming_another_branchs_member_with_a_new_account_is_refused_and_changes_nothing(
        world: World, rolled_back: ServiceClient) -> None:
    t = world.tree
    victim, colleague = people(2)
    await enrol_and_pay(world, [victim], unit=t.other_unit)
    victim_id = await member_of(world, victim["certno"])
    _, client, claim_id = await payments_with_pending_aid(rolled_back, world, victim_id)
    before = await instruction(client, claim_id, world.tree.centre)
    assert before["status"] == "pending" and before["account"] == masked(victim["bank_account"])
    attacker = await world.account("unit_agent", t.unit)
    hijacked = {**victim, "phone": "13999999999", "bank_account": luhn_account(random.Random(uid()))}
    nxt = await world.new_period(period_doc(previous=world.period))
    events_before = await world.outbox_count()
    for period in (world.period, nxt):  # this period (already enrolled elsewhere) and the next one alike
        r = await world.submit(roster_body([colleague, hijacked]), headers=attacker, period=period)
        assert r.status_code == 422, r.text
        assert error_codes(r.json()) == [(["members", 1, "certno"], "member_of_another_unit")]
        # Neither the other unit nor its branch is named to the caller.
        for code in (t.other_unit, t.other_agency):
            assert code not in r.text

    # Nothing changed: the member's unit, account and phone; their own agent still reaches them; no event, no
    # audit line; the refused roster stored nobody (the colleague is unknown too).
    own_agent = await world.account("unit_agent", t.other_unit)
    stored = await world.whole(victim["certno"], own_agent)
    assert (stored["unit"], stored["bank_account"], stored["phone"]) == \
        (t.other_unit, victim["bank_account"], victim["phone"])
    assert (await world.client.get(f"/api/v1/members/{victim_id}", headers=own_agent)).status_code == 200
    assert (await world.client.get(f"/api/v1/members/{victim_id}", headers=attacker)).status_code == 403
    assert await world.find(colleague["certno"]) == []
    assert await world.outbox_count() == events_before
    assert [a["action"] for a in await audit(world, victim_id)] == ["member.reveal"]  # our own look above
    # The pending aid still goes to the member's own account.
    after = await instruction(client, claim_id, world.tree.centre)
    assert (after["status"], after["account"], after["attempt"]) == ("pending", before["account"], 1)


async def test_a_release_then_the_new_units_roster_moves_the_member_audited_and_only_once(world: World) -> None:
    t = world.tree
    mover = people(1)[0]
    await enrol_and_pay(world, [mover], unit=t.other_unit)
    mid = await member_of(world, mover["certno"])
    own_agent = await world.account("unit_agent", t.other_unit)
    nxt = await world.new_period(period_doc(previous=world.period))

    # A release names the unit the member goes to: another unit still cannot take them.
    r = await world.client.post(f"/api/v1/members/{mid}/release", headers=own_agent,
                                json={"to_unit": t.unit, "reason": "调动至五华区另一单位"})
    assert r.status_code == 200, r.text
    release = r.json()
    assert (release["from_unit"], release["to_unit"]) == (t.other_unit, t.unit)
    r = await world.submit(roster_body([mover]), unit=t.sibling, period=nxt,
                           headers=await world.account("unit_agent", t.sibling))
    assert error_codes(r.json()) == [(["members", 0, "certno"], "member_of_another_unit")]

    # The named unit's roster moves them; the roster's new account and phone are not taken (warnings).
    new_agent = await world.account("unit_agent", t.unit)
    changed = {**mover, "phone": "13700001111", "bank_account": luhn_account(random.Random(uid()))}
    r = await world.submit(roster_body([changed]), period=nxt, headers=new_agent)
    assert r.status_code == 201, r.text
    assert r.json()["fee_total"] == "120.00"  # a renewing member still (第四条)
    assert sorted((w["loc"][2], w["code"]) for w in r.json()["warnings"]
                  if w["code"] == "stored_value_kept") == [("bank_account", "stored_value_kept"),
                                                           ("phone", "stored_value_kept")]
    stored = await world.whole(mover["certno"], new_agent)
    assert (stored["unit"], stored["bank_account"], stored["phone"]) == (t.unit, mover["bank_account"],
                                                                         mover["phone"])
    trail = await audit(world, mid)
    moves = [a for a in trail if a["action"] in ("member.release", "member.transfer")]
    assert [a["action"] for a in moves] == ["member.release", "member.transfer"]
    assert moves[1]["detail"]["from_unit"] == t.other_unit and moves[1]["detail"]["to_unit"] == t.unit
    assert moves[1]["detail"]["basis"] == "release" and moves[1]["detail"]["release_id"] == release["release_id"]
    assert moves[0]["detail"]["reason"] == "调动至五华区另一单位"
    # The history stays: the old coverage under the old unit, the new one under the new unit.
    assert [(c["period"], c["unit"]) for c in stored["coverages"]] == [(world.period, t.other_unit),
                                                                       (nxt, t.unit)]
    # The old unit's agent no longer reaches the member; the release is spent.
    assert (await world.client.get(f"/api/v1/members/{mid}", headers=own_agent)).status_code == 403
    later = await world.new_period(period_doc(previous=nxt))
    r = await world.submit(roster_body([mover]), unit=t.other_unit, period=later, headers=own_agent)
    assert error_codes(r.json()) == [(["members", 0, "certno"], "member_of_another_unit")]


async def test_only_the_members_own_unit_agent_the_centre_or_the_admin_may_release_them(world: World) -> None:
    t = world.tree
    person = people(1)[0]
    await enrol(world, [person])
    mid = await member_of(world, person["certno"])
    body = {"reason": "调出"}
    for headers, status in [
        (await world.account("unit_agent", t.sibling), 403),  # another unit's agent
        (await world.account("agency_reviewer", t.agency), 403),  # a reviewer above: not theirs to move
        (await world.account("office_reviewer", t.office), 403),
        (token_for("finance", t.centre, (t.centre,), "centre"), 403),
    ]:
        r = await world.client.post(f"/api/v1/members/{mid}/release", headers=headers, json=body)
        assert r.status_code == status, r.text
    r = await world.client.post(f"/api/v1/members/{mid}/release", headers=world.tree.agent(t.unit),
                                json={"to_unit": t.unit, "reason": "调出"})
    assert r.status_code == 422 and r.json()["code"] == "same_unit"
    centre = await world.account("centre_reviewer", t.centre)
    r = await world.client.post(f"/api/v1/members/{mid}/release", headers=centre, json=body)
    assert r.status_code == 200, r.text
    r = await world.client.post(f"/api/v1/members/{mid}/release", headers=world.admin, json=body)
    assert r.status_code == 409 and r.json()["code"] == "already_released"


async def test_a_period_allowing_a_change_of_employer_moves_a_member_the_old_unit_no_longer_covers(
        world: World) -> None:
    t = world.tree
    former, current = people(2)
    # An earlier period whose coverage is over, entered late by the admin (paper records).
    old = period_doc(previous=None, window_open=False)
    old["windows"]["coverage"] = {"from": iso(TODAY - timedelta(days=400)), "to": iso(TODAY - timedelta(days=36))}
    old["windows"]["claims"] = {"from": iso(TODAY - timedelta(days=390)), "to": iso(TODAY + timedelta(days=30))}
    old_code = await world.new_period(old)
    r = await world.submit(roster_body([former]), unit=t.other_unit, period=old_code, late_reason="补录纸质名单")
    assert r.status_code == 201, r.text
    # paid on time, by the bank's date inside that period's enrolment window (第五条)
    paid = await world.pay(r.json()["roster_id"], r.json()["fee_total"], paid_at=TODAY - timedelta(days=35))
    assert paid.status_code == 200, paid.text
    await enrol_and_pay(world, [current], unit=t.other_unit)  # covered by the old unit in a running period

    rules = period_doc(previous=world.period)
    rules["enrolment"]["transfer_between_periods"] = True
    nxt = await world.new_period(rules)
    agent = await world.account("unit_agent", t.unit)
    r = await world.submit(roster_body([former, current]), period=nxt, headers=agent)
    # The one the old unit still covers is not moved by the rule; the other one is.
    assert error_codes(r.json()) == [(["members", 1, "certno"], "member_of_another_unit")]
    r = await world.submit(roster_body([former]), period=nxt, headers=agent)
    assert r.status_code == 201, r.text
    mid = await member_of(world, former["certno"])
    [move] = [a for a in await audit(world, mid) if a["action"] == "member.transfer"]
    assert move["detail"]["basis"] == "between_periods" and move["detail"]["from_unit"] == t.other_unit
    assert (await world.find(former["certno"]))[0]["unit"] == t.unit


async def test_a_roster_never_changes_a_members_stored_account_or_phone(world: World) -> None:
    person = people(1)[0]
    await enrol_and_pay(world, [person])
    mid = await member_of(world, person["certno"])
    nxt = await world.new_period(period_doc(previous=world.period))
    new_account = luhn_account(random.Random(uid()))
    r = await world.submit(roster_body([{**person, "bank_account": new_account, "phone": "13600002222",
                                         "bank_name": "富滇银行"}]), period=nxt)
    assert r.status_code == 201, r.text
    kept = sorted(w["loc"][2] for w in r.json()["warnings"] if w["code"] == "stored_value_kept")
    assert kept == ["bank_account", "bank_name", "phone"]
    assert all(new_account not in w["msg"] and person["bank_account"] not in w["msg"] for w in r.json()["warnings"])
    stored = await world.whole(person["certno"])
    assert (stored["bank_account"], stored["bank_name"], stored["phone"]) == \
        (person["bank_account"], person["bank_name"], person["phone"])
    assert await outbox_of(world, "member.contact_changed", mid) == []


# --- the audited change, told at the previous phone, held in payments -------------------------------------
async def test_a_changed_account_is_announced_with_the_previous_phone_and_the_member_is_told_there(
        world: World, rolled_back: ServiceClient) -> None:
    person = people(1)[0]
    await enrol_and_pay(world, [person])
    mid = await member_of(world, person["certno"])
    agent_id = str(uuid.uuid4())
    agent = token_for("unit_agent", world.tree.unit, world.tree.path(world.tree.unit), "unit", user_id=agent_id)
    r = await world.client.patch(f"/api/v1/members/{mid}", headers=agent, json={
        "bank_account": luhn_account(random.Random(uid())), "bank_name": "中国银行昆明分行", "phone": "13511112222",
        "reason": "会员本人申请"})
    assert r.status_code == 200, r.text
    [changed] = await outbox_of(world, "member.contact_changed", mid)
    assert (changed["previous_phone"], changed["phone"], changed["changed_by"]) == \
        (person["phone"], "13511112222", agent_id)

    notifications, client = await rolled_back("notifications")
    [covered] = await outbox_of(world, "member.covered", mid)
    assert await apply_event(notifications, MemberCovered.model_validate(covered))
    assert await apply_event(notifications, MemberContactChanged.model_validate(changed))
    async with notifications.state.db.transaction() as session:
        [sms] = (await session.execute(select(Notification).where(
            Notification.member_id == mid, Notification.template == "contact_changed"))).scalars().all()
        recipient = await session.get(Recipient, mid)
    assert (sms.channel, sms.to_phone) == ("sms", person["phone"])  # the previous phone, not the new one
    assert recipient is not None and recipient.phone == "13511112222"  # later messages: the new phone
    r = await client.get("/api/v1/notifications", params={"member_id": mid},
                         headers=token_for("unit_agent", world.tree.unit, world.tree.path(world.tree.unit), "unit"))
    [shown] = [n for n in r.json() if n["template"] == "contact_changed"]
    assert shown["to"] == person["phone"][:3] + "****" + person["phone"][-4:]


async def test_a_payment_to_a_just_changed_account_is_held_and_not_batched_until_another_officer_confirms(
        world: World, rolled_back: ServiceClient) -> None:
    person = people(1)[0]
    await enrol_and_pay(world, [person])
    mid = await member_of(world, person["certno"])
    payments, client, claim_id = await payments_with_pending_aid(rolled_back, world, mid)
    changer = str(uuid.uuid4())
    new_account = luhn_account(random.Random(uid()))
    change = MemberContactChanged(member_id=mid, bank_account=new_account, bank_name="中国银行昆明分行",
                                  phone=person["phone"], name=person["name"], previous_phone=person["phone"],
                                  changed_by=changer, member_version=await next_version(world, mid))
    assert await apply_event(payments, change)
    held = await instruction(client, claim_id, world.tree.centre)
    assert (held["status"], held["account"]) == ("held", masked(new_account))
    assert "核实" in held["hold"]["reason"] and held["hold"]["confirmed_by"] is None

    # A cut takes every pending line, never a held one: this test's only line is held, so there is nothing to cut.
    r = await client.post("/api/v1/payment-batches", json={"format": "pain001"}, headers=finance())
    assert r.status_code == 409 and r.json()["code"] == "nothing_to_cut", r.text
    still = await instruction(client, claim_id, world.tree.centre)
    assert (still["status"], still["batch_id"]) == ("held", None)
    # An approval after the change is held too.
    second = str(uuid.uuid4())
    assert await apply_event(payments, ClaimApproved(claim_id=second, member_id=mid, period=held["period"],
                                                     plan="inpatient", aid_amount=Decimal("100.00"),
                                                     rulebook_code="yn-18"))
    assert (await instruction(client, second, world.tree.centre))["status"] == "held"

    url = f"/api/v1/payment-instructions/{held['instruction_id']}/confirm-hold"
    body = {"reason": "已按原手机号联系会员本人核实"}
    r = await client.post(url, json=body, headers=token_for("unit_agent", "U"))
    assert r.status_code == 403
    r = await client.post(url, json=body, headers=finance(changer, world.tree.centre))  # whoever changed it cannot confirm it
    assert r.status_code == 403 and r.json()["code"] == "same_person"
    r = await client.post(url, json=body, headers=finance(FINANCE_ID, world.tree.centre))
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "pending" and r.json()["hold"]["confirmed_by"] == f"finance-{world.tree.centre}"
    assert r.json()["hold"]["note"] == body["reason"] and r.json()["hold"]["confirmed_at"]
    r = await client.post(url, json=body, headers=finance(FINANCE_ID, world.tree.centre))
    assert r.status_code == 409 and r.json()["code"] == "not_held"
    r = await client.post("/api/v1/payment-batches", json={"format": "pain001"}, headers=finance())
    assert r.status_code == 201 and (r.json()["count"], r.json()["total"]) == (1, "3460.00"), r.text
    assert (await instruction(client, claim_id, world.tree.centre))["batch_id"] == r.json()["batch_id"]
    assert (await instruction(client, second, world.tree.centre))["status"] == "held"


async def test_an_account_changed_longer_ago_than_the_setting_holds_nothing(
        world: World, rolled_back: ServiceClient) -> None:
    person = people(1)[0]
    await enrol_and_pay(world, [person])
    mid = await member_of(world, person["certno"])
    payments, client, _ = await payments_with_pending_aid(rolled_back, world, mid)
    assert payments.state.settings.account_change_hold_days == 7
    assert await apply_event(payments, MemberContactChanged(
        member_id=mid, bank_account=luhn_account(random.Random(uid())), bank_name="中国银行昆明分行",
        phone=person["phone"], name=person["name"], previous_phone=person["phone"],
        member_version=await next_version(world, mid)))
    async with payments.state.db.transaction() as session:
        await session.execute(text("UPDATE payees SET account_changed_at = :at WHERE member_id = :m"),
                              {"at": datetime.now(UTC) - timedelta(days=7, minutes=1), "m": mid})
    claim_id = str(uuid.uuid4())
    assert await apply_event(payments, ClaimApproved(claim_id=claim_id, member_id=mid, period=world.period,
                                                     plan="inpatient", aid_amount=Decimal("50.00"),
                                                     rulebook_code="yn-18"))
    found = await instruction(client, claim_id, world.tree.centre)
    assert found["status"] == "pending" and found["hold"] is None
