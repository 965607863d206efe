"""Member accounts made by the unit agent (services/enrollment/member_accounts.py): linked to a member of the
agent's own unit, one per member, the password policy applied, audited; the member then logs in to the app."""

from __future__ import annotations

import uuid

from tests.conftest import ServiceClient, token_for
from tests.service.test_staff_lists import ADMIN, agent, unit_with_members


async def test_the_unit_agent_makes_a_members_account_and_the_member_logs_in(rolled_back: ServiceClient) -> None:
    _, client = await rolled_back("enrollment")
    path, _, _, _ = await unit_with_members(client)
    [first, second, *_] = (await client.get(f"/api/v1/units/{path[3]}/members", headers=agent(path))).json()["items"]
    url = f"/api/v1/units/{path[3]}/member-accounts"
    username = f"m{uuid.uuid4().hex[:8]}"
    r = await client.post(url, headers=agent(path), json={"member_id": first["member_id"], "username": username,
                                                          "password": "yunnan-mutual-2026"})
    assert r.status_code == 201, r.text
    assert r.json()["member_id"] == first["member_id"] and r.json()["role"] == "member"

    login = await client.post("/api/v1/auth/token", data={"username": username, "password": "yunnan-mutual-2026"})
    assert login.status_code == 200 and login.json()["member_id"] == first["member_id"]
    me = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {login.json()['access_token']}"})
    assert me.status_code == 200 and me.json()["name"] == first["name"]

    audit = (await client.get(f"/api/v1/members/{first['member_id']}/audit", headers=ADMIN)).json()
    assert [(a["action"], a["detail"]["username"]) for a in audit] == [("member_account.create", username)]
    assert all("yunnan-mutual-2026" not in str(a) for a in audit)

    again = await client.post(url, headers=agent(path), json={"member_id": first["member_id"],
                                                              "username": f"m{uuid.uuid4().hex[:8]}",
                                                              "password": "yunnan-mutual-2026"})
    assert again.status_code == 409 and again.json()["code"] == "member_has_account"
    taken = await client.post(url, headers=agent(path), json={"member_id": second["member_id"],
                                                              "username": username, "password": "another-pass-77"})
    assert taken.status_code == 409 and taken.json()["code"] == "username_taken"
    weak = await client.post(url, headers=agent(path), json={"member_id": second["member_id"],
                                                             "username": f"m{uuid.uuid4().hex[:8]}", "password": "123"})
    assert weak.status_code == 422 and weak.json()["errors"][0]["loc"] == ["body", "password"]


async def test_no_account_for_someone_outside_the_agents_unit(rolled_back: ServiceClient) -> None:
    _, client = await rolled_back("enrollment")
    path, _, _, _ = await unit_with_members(client)
    other, _, _, _ = await unit_with_members(client)
    [theirs, *_] = (await client.get(f"/api/v1/units/{other[3]}/members", headers=agent(other))).json()["items"]
    body = {"member_id": theirs["member_id"], "username": f"m{uuid.uuid4().hex[:8]}", "password": "yunnan-mutual-2026"}
    # Through the agent's own unit: not a member of it.
    r = await client.post(f"/api/v1/units/{path[3]}/member-accounts", headers=agent(path), json=body)
    assert r.status_code == 404 and r.json()["code"] == "member_not_found"
    # Through the other unit: outside the agent's branch.
    r = await client.post(f"/api/v1/units/{other[3]}/member-accounts", headers=agent(path), json=body)
    assert r.status_code == 403
    for role, depth in (("agency_reviewer", 3), ("office_reviewer", 2)):
        r = await client.post(f"/api/v1/units/{other[3]}/member-accounts", json=body,
                              headers=token_for(role, other[depth - 1], tuple(other[:depth]), "x"))
        assert r.status_code == 403
