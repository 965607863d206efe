"""Issue #9, finding 8: personal data is masked in every response for every role (the unit agent, finance and
the member themselves included) and shown whole only on purpose: the released bank file (payments) and
``POST /members/{id}/reveal`` for the member's own unit agent and the admin, each reveal in the member's audit
trail. Also: a member who moved units leaves their earlier claims readable by the branch that had them.
Real PostgreSQL over HTTP."""

from __future__ import annotations

import random
from datetime import timedelta
from decimal import Decimal
from typing import Any

from deploy.people import luhn_account
from shared.events import MemberCovered
from tests.conftest import ServiceClient, apply_event, token_for
from tests.service.test_claims import TODAY, Branch, claims, cover, get_claim, publish_period, submit
from tests.service.test_enrollment import (
    Headers,
    World,
    admin,  # noqa: F401 (fixture used by name)
    enrol,
    enrol_and_pay,
    people,
    uid,
    world,  # noqa: F401 (fixture used by name)
)

FIELDS = ["certno", "phone", "bank_account"]


def masks(person: dict[str, Any]) -> tuple[str, str, str]:
    c, p, a = person["certno"], person["phone"], person["bank_account"]
    return c[:6] + "*" * 8 + c[-4:], p[:3] + "****" + p[-4:], a[:4] + "*" * (len(a) - 8) + a[-4:]


def shown(record: dict[str, Any]) -> tuple[str, str, str]:
    return record["certno"], record["phone"], record["bank_account"]


async def reveal(w: World, member_id: str, headers: Headers, body: dict[str, Any] | None = None) -> Any:
    return await w.client.post(f"/api/v1/members/{member_id}/reveal", headers=headers,
                               json=body or {"fields": FIELDS, "reason": "核对会员更换的银行账号"})


async def test_every_role_and_the_member_see_personal_data_masked(world: World) -> None:
    t = world.tree
    person = people(1)[0]
    await enrol_and_pay(world, [person])
    [found] = await world.find(person["certno"])
    mid = found["member_id"]
    viewers = {
        "admin": world.admin,
        "unit_agent": await world.account("unit_agent", t.unit),
        "agency_reviewer": await world.account("agency_reviewer", t.agency),
        "office_reviewer": await world.account("office_reviewer", t.office),
        "centre_reviewer": await world.account("centre_reviewer", t.centre),
        "member": await world.account("member", member_id=mid),
    }
    for role, headers in viewers.items():
        r = await world.client.get(f"/api/v1/members/{mid}", headers=headers)
        assert r.status_code == 200, (role, r.text)
        assert shown(r.json()) == masks(person), role
        for value in shown(person):
            assert value not in r.text, role
    r = await world.client.get("/api/v1/me", headers=viewers["member"])
    assert r.status_code == 200 and shown(r.json()) == masks(person) and r.json()["member_id"] == mid
    r = await world.client.get("/api/v1/me", headers=viewers["unit_agent"])
    assert r.status_code == 403
    # The member cannot reveal their own data through the API either (they know it; a stolen token need not).
    r = await reveal(world, mid, viewers["member"])
    assert r.status_code == 403


async def test_the_admin_no_longer_sees_a_whole_account_in_the_patch_answer(world: World) -> None:
    person = people(1)[0]
    await enrol(world, [person])
    [found] = await world.find(person["certno"])
    account = luhn_account(random.Random(uid()))
    r = await world.client.patch(f"/api/v1/members/{found['member_id']}", headers=world.admin,
                                 json={"bank_account": account, "bank_name": "中国银行昆明分行", "phone": "13312345678"})
    assert r.status_code == 200, r.text
    assert account not in r.text and "13312345678" not in r.text
    assert r.json()["bank_account"] == account[:4] + "*" * (len(account) - 8) + account[-4:]


async def test_the_members_own_unit_agent_reveals_on_purpose_and_the_reveal_is_audited(world: World) -> None:
    person = people(1)[0]
    await enrol(world, [person])
    [found] = await world.find(person["certno"])
    mid = found["member_id"]
    agent = await world.account("unit_agent", world.tree.unit)
    r = await reveal(world, mid, agent)
    assert r.status_code == 200, r.text
    assert shown(r.json()) == shown(person)
    r = await reveal(world, mid, agent, {"fields": ["phone"], "reason": "电话通知会员补充材料"})
    assert r.status_code == 200 and r.json() == {"member_id": mid, "phone": person["phone"]}
    trail = (await world.client.get(f"/api/v1/members/{mid}/audit", headers=agent)).json()
    reveals = [a for a in trail if a["action"] == "member.reveal"]
    assert [(a["detail"]["fields"], a["detail"]["reason"]) for a in reveals] == [
        (sorted(FIELDS), "核对会员更换的银行账号"), (["phone"], "电话通知会员补充材料")]
    assert all(a["actor"].startswith("unit_agent-") for a in reveals)
    for value in shown(person):  # the trail names the fields, never the values
        assert value not in str(trail)


async def test_a_reveal_is_refused_to_another_units_agent_to_reviewers_and_without_a_reason(world: World) -> None:
    t = world.tree
    person = people(1)[0]
    await enrol(world, [person])
    [found] = await world.find(person["certno"])
    mid = found["member_id"]
    stranger = await world.account("unit_agent", t.sibling)
    r = await reveal(world, mid, stranger)
    assert r.status_code == 403 and r.json()["code"] == "outside_subtree"
    for value in shown(person):
        assert value not in r.text
    for role, org in [("agency_reviewer", t.agency), ("centre_reviewer", t.centre)]:
        r = await reveal(world, mid, await world.account(role, org))
        assert r.status_code == 403 and r.json()["code"] == "role_not_allowed", role
    r = await reveal(world, mid, token_for("finance", t.centre, (t.centre,), "centre"))
    assert r.status_code == 403
    agent = world.tree.agent(t.unit)
    for body in ({"fields": FIELDS}, {"fields": ["name"], "reason": "核对"}, {"fields": [], "reason": "核对"}):
        r = await reveal(world, mid, agent, body)
        assert r.status_code == 422, body
    trail = (await world.client.get(f"/api/v1/members/{mid}/audit", headers=world.admin)).json()
    assert [a for a in trail if a["action"] == "member.reveal"] == []
    r = await reveal(world, mid, world.admin)
    assert r.status_code == 200 and shown(r.json()) == shown(person)


async def test_a_roster_answer_carries_no_personal_data(world: World) -> None:
    members = people(3)
    members[1]["bank_account"] = members[1]["bank_account"][:-1] + str((int(members[1]["bank_account"][-1]) + 1) % 10)
    roster = await enrol(world, members)  # a passbook account: a Luhn warning for row 2
    assert roster["warnings"]
    for m in members:
        for value in shown(m):
            assert value not in str(roster)


async def test_a_transferred_members_earlier_claims_stay_with_the_branch_that_had_them(
        rolled_back: ServiceClient) -> None:
    app, client = await claims(rolled_back)
    before = await publish_period(app)
    old = Branch()
    member = await cover(app, before, old)
    claim = await submit(client, member)
    assert member.certno not in str(claim)  # no ID number in a claim's answer
    # The member changed employer: a later period covers them in another branch.
    new = Branch()
    after = await publish_period(app)
    rng = random.Random(uid())
    assert await apply_event(app, MemberCovered(
        member_id=member.member_id, period=after, plans=["inpatient"], coverage_from=TODAY + timedelta(days=181),
        coverage_to=TODAY + timedelta(days=545), name="王芳", certno=member.certno, sex="female",
        member_type="in_service", unit=new.unit, unit_path=new.path, bank_account=luhn_account(rng),
        bank_name="中国银行昆明分行", phone="13812345678", renewing=True, fee=Decimal("120.00")))
    # The claim recorded its unit at submission: the old branch still reads it, the new one does not.
    for headers in (old.unit_agent(), old.agency_reviewer()):
        assert (await get_claim(client, claim["claim_id"], headers))["claim_id"] == claim["claim_id"]
    r = await client.get(f"/api/v1/claims/{claim['claim_id']}", headers=new.unit_agent())
    assert r.status_code == 403
    # The old branch's coverage list still shows the period it covered, and only that.
    r = await client.get("/api/v1/coverages", params={"member_id": member.member_id}, headers=old.unit_agent())
    assert [c["period"] for c in r.json()] == [before] and member.certno not in r.text
