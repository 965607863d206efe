"""A correction of a period's rules: enrollment publishes a new revision with its reason; claims assesses every
member's stays in the period again and records each difference as an adjustment, never a silent change."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from services.claims.models import PeriodCopy
from shared.events import PeriodPublished
from tests.conftest import ServiceClient, apply_event
from tests.service.test_claims import get_claim, outbox_events, setup
from tests.service.test_claims_lifecycle import approve_through, submit_stay
from tests.service.test_enrollment import World, admin, period_doc, world  # noqa: F401 (fixtures used by name)


async def rulebook_of(app: Any, period: str) -> dict[str, Any]:
    async with app.state.db.transaction() as session:
        return dict((await session.execute(select(PeriodCopy.rulebook).where(PeriodCopy.code == period)))
                    .scalar_one())


async def test_a_corrected_min_aid_reassesses_approved_stays_as_adjustments(rolled_back: ServiceClient) -> None:
    app, client, member = await setup(rolled_back)
    first = await submit_stay(client, member, "1000.00")  # F(1000) = max(100, 60) = 100.00
    second = await submit_stay(client, member, "1000.00")  # F(2000) - F(1000) = 360 - 100 = 260.00
    assert (first["aid_amount"], second["aid_amount"]) == ("100.00", "260.00")
    for claim in (first, second):
        assert (await approve_through(client, member, claim["claim_id"]))["status"] == "approved"
    corrected = await rulebook_of(app, member.period)
    corrected["plans"][0]["min_aid"] = "120.00"
    event = PeriodPublished(period=member.period, rulebook=corrected, revision=2, reason="最低补助标准调整为120元")
    envelope = event.envelope()
    assert await apply_event(app, event, envelope)
    after_first = await get_claim(client, first["claim_id"], member.token())
    after_second = await get_claim(client, second["claim_id"], member.token())
    # F is now 120 at 1000 and still 360 at 2000: +20.00 on the first stay, -20.00 on the second; the total
    # stays F(2000) = 360.00 and both first assessments are kept.
    assert (after_first["aid_amount"], after_first["assessed_aid_amount"]) == ("120.00", "100.00")
    assert (after_second["aid_amount"], after_second["assessed_aid_amount"]) == ("240.00", "260.00")
    assert [a["amount"] for a in after_first["adjustments"]] == ["20.00"]
    assert [a["cause"] for a in after_second["adjustments"]] == ["rulebook_correction"]
    assert [e["payload"]["amount"] for e in await outbox_events(app, second["claim_id"], "claim.adjusted")] == [
        "-20.00"]
    # The same revision again (redelivered, or re-published) changes nothing more.
    assert await apply_event(app, PeriodPublished(period=member.period, rulebook=corrected, revision=2))
    assert len((await get_claim(client, first["claim_id"], member.token()))["adjustments"]) == 1


async def test_the_admin_corrects_a_periods_rulebook_with_a_reason(world: World) -> None:
    doc = period_doc()
    doc["code"] = world.period
    doc["plans"][0]["min_aid"] = "120.00"
    url = f"/api/v1/periods/{world.period}/rulebook"
    r = await world.client.put(url, json=doc, params={"reason": "最低补助标准调整"}, headers=world.admin)
    assert r.status_code == 200, r.text
    assert r.json()["revision"] == 2
    published = [e for e in await world.outbox() if e["type"] == "period.published" and e["key"] == world.period]
    assert [(e["payload"]["revision"], e["payload"]["reason"]) for e in published] == [(1, ""), (2, "最低补助标准调整")]
    again = await world.client.put(url, json=doc, params={"reason": "再次提交"}, headers=world.admin)
    assert again.status_code == 409 and again.json()["code"] == "rulebook_unchanged"
    renamed = dict(doc, code="another-code")
    wrong = await world.client.put(url, json=renamed, params={"reason": "想改一下期号"}, headers=world.admin)
    assert wrong.status_code == 422 and wrong.json()["errors"][0]["loc"] == ["body", "code"]
    agent = await world.client.put(url, json=doc, params={"reason": "单位经办人试图更正"}, headers=world.tree.agent(world.tree.unit))
    assert agent.status_code == 403


async def test_a_claim_in_review_follows_its_corrected_amount_to_the_level_that_decides_it(
        rolled_back: ServiceClient) -> None:
    app, client, member = await setup(rolled_back)
    claim = await submit_stay(client, member, "10000.00")  # F(10000) = 0.30 * 9200 = 2760.00: the agency point
    detail = await get_claim(client, claim["claim_id"], member.token())
    assert (claim["aid_amount"], detail["approval"]["final_level"]) == ("2760.00", "agency_point")
    corrected = await rulebook_of(app, member.period)
    corrected["plans"][0]["bands"][0]["rate"] = "0.35"  # 0.35 * 9200 = 3220.00 > 3000: the office decides
    assert await apply_event(app, PeriodPublished(period=member.period, rulebook=corrected, revision=2,
                                                  reason="第一段比例调整为35%"))
    after = await get_claim(client, claim["claim_id"], member.token())
    assert after["aid_amount"] == "3220.00" and after["status"] == "in_review"
    assert after["approval"]["final_level"] == "office"
    # Not yet approved: nothing to tell payments; the approval will carry the new amount.
    assert await outbox_events(app, claim["claim_id"], "claim.adjusted") == []
    assert [a["announced"] for a in after["adjustments"]] == [False]
