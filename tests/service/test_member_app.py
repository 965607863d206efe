"""The member's own record for the app (services/enrollment/member_app.py, issue #13 item 1): cover, the fee
of each period and where it stands (paid / held / unpaid), loyalty grants (第十五条); masked; theirs only."""

from __future__ import annotations

import uuid
from datetime import date

from services.enrollment.member_app import FeeState, fee_state
from services.enrollment.models import LoyaltyGrant
from tests.conftest import ServiceClient, token_for
from tests.service.test_staff_lists import ADMIN, agent, unit_with_members


def test_fee_state_of_an_enrolment() -> None:
    assert fee_state("covered", True, True) is FeeState.PAID
    assert fee_state("withdrawn", True, True) is FeeState.PAID  # 第十四条: covered and paid, no refund
    assert fee_state("pending", False, True) is FeeState.HELD
    assert fee_state("pending", False, False) is FeeState.UNPAID


async def test_me_shows_cover_fees_and_loyalty_masked(rolled_back: ServiceClient) -> None:
    app, client = await rolled_back("enrollment")
    path, period, people, rosters = await unit_with_members(client)
    members = {m["name"]: m for m in (await client.get(f"/api/v1/units/{path[3]}/members", headers=agent(path),
                                                       params={"limit": 50})).json()["items"]}
    # people[:4] are on the paid roster; people[4:] on the second, which now gets part of its fees.
    r = await client.post(f"/api/v1/rosters/{rosters[1]}/payments", headers=ADMIN, json={
        "amount": "100.00", "reference": "工行回单 0002", "paid_at": date.today().isoformat()})
    assert r.status_code == 200, r.text
    paid_one, held_one = members[people[0]["name"]], members[people[5]["name"]]
    async with app.state.db.transaction() as session:
        session.add(LoyaltyGrant(member_id=paid_one["member_id"], period=period, grant="重大意外伤害保障",
                                 periods_without_aid=["p15", "p16", "p17"]))

    me = await client.get("/api/v1/me", headers=token_for("member", member_id=paid_one["member_id"]))
    assert me.status_code == 200, me.text
    body = me.json()
    assert body["name"] == people[0]["name"] and body["unit"] == path[3] and body["unit_name"] == f"工会 {path[3]}"
    assert str(people[0]["certno"]) not in me.text and str(people[0]["bank_account"]) not in me.text
    assert str(people[0]["phone"]) not in me.text and "****" in body["phone"]
    [cover] = body["coverages"]
    assert cover["period"] == period and cover["plan"] == "inpatient" and cover["status"] == "covered"
    assert cover["fee_state"] == "paid" and cover["fee"] == "150.00" and cover["from"] and cover["to"]
    [grant] = body["loyalty_grants"]
    assert grant["grant"] == "重大意外伤害保障" and grant["periods_without_aid"] == ["p15", "p16", "p17"]

    held = (await client.get("/api/v1/me", headers=token_for("member", member_id=held_one["member_id"]))).json()
    [cover] = held["coverages"]
    assert cover["status"] == "pending" and cover["fee_state"] == "held" and cover["from"] is None
    assert "第五条" in cover["fee_state_zh"] and held["loyalty_grants"] == []

    # Not for staff: the route is the member's own.
    assert (await client.get("/api/v1/me", headers=agent(path))).status_code == 403


async def test_a_member_token_naming_no_valid_member_finds_no_one_never_a_500(rolled_back: ServiceClient) -> None:
    _, client = await rolled_back("enrollment")
    for member_id in (None, "", "M-12", "not-a-uuid", str(uuid.uuid4())):
        r = await client.get("/api/v1/me", headers=token_for("member", member_id=member_id))
        assert r.status_code == 404, (member_id, r.text)
        assert r.json()["code"] == "member_not_found"
