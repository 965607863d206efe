"""Yuncheng (seed 001) as claims runs it: claims are filed by the unit union, not by members; every claim, an
aid of 0.00 included, is approved by the city centre after the county union has checked it."""

from __future__ import annotations

from tests.conftest import ServiceClient
from tests.service.test_claims import claim_body, claims, cover, decide, publish_rulebook


async def yuncheng_period(app: object) -> str:
    return await publish_rulebook(app, "yuncheng-2024.yaml", "yc")  # type: ignore[arg-type]


async def test_a_member_cannot_file_their_own_claim_the_unit_union_does(rolled_back: ServiceClient) -> None:
    app, client = await claims(rolled_back)
    member = await cover(app, await yuncheng_period(app))
    # 程军刚's figures (seed 001): a base of 5,000 -> 30% of all of it under this year's rates
    body = claim_body(member, base="5000.00", own_pay="0.00")
    r = await client.post("/api/v1/claims", json=body, headers=member.token())
    assert r.status_code == 403 and r.json()["code"] == "claims_filed_by_unit", r.text
    assert "单位工会" in r.json()["detail"]
    r = await client.post("/api/v1/claims", json=body, headers=member.branch.unit_agent())
    assert r.status_code == 201 and r.json()["aid_amount"] == "1500.00", r.text


async def test_every_claim_goes_through_the_county_to_the_city_centre(rolled_back: ServiceClient) -> None:
    app, client = await claims(rolled_back)
    member = await cover(app, await yuncheng_period(app))
    branch = member.branch
    # 1,500 is below the first band: 0.00; with the second stay the period's base is 3,500: 25% of it, 875.00
    for base, aid in (("1500.00", "0.00"), ("2000.00", "875.00")):
        r = await client.post("/api/v1/claims", json=claim_body(member, base=base, own_pay="0.00"),
                              headers=branch.unit_agent())
        assert r.status_code == 201 and r.json()["aid_amount"] == aid, r.text
        claim_id = r.json()["claim_id"]
        r = await decide(client, claim_id, branch.agency_reviewer())
        assert r.status_code == 200 and r.json()["status"] == "in_review", r.text
        assert r.json()["approval"]["current_level"] == "centre" and r.json()["approval"]["final_level"] == "centre"
        r = await decide(client, claim_id, branch.centre_reviewer())
        assert r.status_code == 200 and r.json()["status"] == "approved", r.text
        assert [s["level"] for s in r.json()["approval"]["steps"]] == ["unit", "agency_point", "centre"]
