"""The claim list's day filters (issue #10 item 3): any day YYYY-MM-DD the service's calendar can hold is taken,
one it cannot (year 1 or 9999: no start or end of day in the service's zone) is a 422 naming the parameter, never a
500, on the list and on its CSV."""

from __future__ import annotations

from tests.conftest import ServiceClient
from tests.service.test_claims import TODAY, setup, submit


async def test_days_out_of_the_calendar_are_422_naming_the_parameter(rolled_back: ServiceClient) -> None:
    _, client, member = await setup(rolled_back)
    claim = await submit(client, member)
    agent = member.branch.unit_agent()
    for path in ("/api/v1/claims", "/api/v1/claims.csv"):
        for name, value in (("submitted_from", "0001-01-01"), ("submitted_to", "9999-12-31"),
                            ("submitted_from", "2026-02-30")):
            r = await client.get(path, params={name: value}, headers=agent)
            assert r.status_code == 422, (path, name, value, r.text)
            assert r.json()["errors"][0]["loc"] == ["query", name]
    r = await client.get("/api/v1/claims", params={"submitted_from": TODAY.isoformat(),
                                                   "submitted_to": TODAY.isoformat()}, headers=agent)
    assert r.status_code == 200 and [c["claim_id"] for c in r.json()["items"]] == [claim["claim_id"]]
    r = await client.get("/api/v1/claims", params={"submitted_from": "1900-01-01", "submitted_to": "1999-12-31"},
                         headers=agent)
    assert r.status_code == 200 and r.json()["items"] == []
