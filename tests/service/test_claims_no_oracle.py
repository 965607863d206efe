"""No one learns from a claim who is a member (least privilege, issue #10 §(b)): naming an ID number covered
outside the caller's reach answers exactly as an ID number nobody covers (404 member_not_covered), for a member and
for a unit agent of another unit, on both intake paths (settlement claims and claims with no settlement); a member
naming another member id is refused before any look-up, whether that id exists or not."""

from __future__ import annotations

import random
import uuid
from datetime import date
from typing import Any

import httpx

from deploy.people import certno as make_certno
from tests.conftest import ServiceClient
from tests.service.test_claims import claim_body, cover, setup


def problem(r: httpx.Response) -> tuple[int, str, str]:
    body = r.json()
    return r.status_code, body["code"], body["detail"]


async def test_an_id_number_outside_the_callers_reach_answers_as_one_nobody_covers(
        rolled_back: ServiceClient) -> None:
    app, client, member = await setup(rolled_back)
    other = await cover(app, member.period, member.branch)
    nobody = make_certno(random.Random(uuid.uuid4().int))
    for caller in (member.token(), member.branch.sibling().unit_agent()):
        for body in (lambda certno: claim_body(certno=certno),
                     lambda certno: {"certno": certno, "plan": "second-aid", "period": member.period}):
            covered, uncovered = body(other.certno), body(nobody)
            answers = [problem(await client.post("/api/v1/claims", json=b, headers=caller))
                       for b in (covered, uncovered)]
            assert answers[0] == answers[1] and answers[0][:2] == (404, "member_not_covered"), answers
    # the member's own ID number is still theirs to claim on
    r = await client.post("/api/v1/claims", json=claim_body(certno=member.certno, base="5000.00"),
                          headers=member.token())
    assert r.status_code == 201, r.text


async def test_a_member_naming_another_member_id_is_refused_whether_it_exists_or_not(
        rolled_back: ServiceClient) -> None:
    app, client, member = await setup(rolled_back)
    other = await cover(app, member.period, member.branch)
    bodies: list[dict[str, Any]] = []
    for member_id in (other.member_id, f"M{uuid.uuid4().hex[:8]}"):
        body = claim_body(other)
        body["member_id"] = member_id
        bodies.append(body)
        bodies.append({"member_id": member_id, "plan": "accident", "grade": "1", "event_date": date.today().isoformat()})
    answers = {problem(await client.post("/api/v1/claims", json=b, headers=member.token())) for b in bodies}
    assert answers == {(403, "not_yourself", "会员只能为本人申请。")}, answers
