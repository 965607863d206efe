"""The bureau feed's batches as stored (issue #12 item 1, services/claims/settlements/service.py write_batch, one
statement a batch): records decided by columns and read one by one (a control character in the setl_id, no
mdtrt_id) keep exactly the members' records with their figures and every sound record's receipt; the same file
again changes nothing."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy import select

from services.claims.models import FeedReceipt, Settlement
from tests.conftest import ServiceClient
from tests.service.test_claims import Member, bureau, setup
from tests.service.test_settlement_feeds import SETTLED, outsider_certno, stay


async def post(client: httpx.AsyncClient, member: Member, lines: list[dict[str, Any]]) -> dict[str, Any]:
    body = "".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines).encode()
    r = await client.post("/api/v1/settlements", content=body,
                          headers={**bureau(member.branch), "Content-Type": "application/x-ndjson"})
    assert r.status_code == 200, r.text
    return r.json()


async def test_a_batch_keeps_members_records_with_their_figures_and_every_receipt_once(
        rolled_back: ServiceClient) -> None:
    app, client, member = await setup(rolled_back)
    plain = [stay(member, base=4000 + i, mdtrt_id=None if i == 1 else f"M-{i}") for i in range(3)]
    outsider = stay(None, certno=outsider_certno())
    odd = stay(member, setl_id="SEP\x1eID-" + plain[0]["setl_id"][:20], base=7000)  # read one by one
    for lines in ([*plain, outsider], [odd, outsider]):
        body = await post(client, member, lines)
        assert (body["received"], body["accepted"], body["not_members"], body["rejected_count"]) == \
            (len(lines), len(lines) - 1, 1, 0), body
        again = await post(client, member, lines)
        assert (again["accepted"], again["duplicates"], again["not_members"]) == (0, len(lines) - 1, 1), again
    async with app.state.db.transaction() as session:
        rows = {s.setl_id: s for s in (await session.execute(select(Settlement).where(
            Settlement.certno == member.certno))).scalars()}
        receipts = (await session.execute(select(FeedReceipt.psn_part_amt).where(
            FeedReceipt.setl_date == SETTLED))).scalars().all()
    assert set(rows) == {x["setl_id"] for x in [*plain, odd]}
    first, second, sep = rows[plain[0]["setl_id"]], rows[plain[1]["setl_id"]], rows[odd["setl_id"]]
    assert (first.mdtrt_id, second.mdtrt_id, sep.mdtrt_id) == ("M-0", None, odd["mdtrt_id"])
    assert (first.medfee_sumamt, first.psn_part_amt, first.setl_date) == (Decimal("12000.00"), Decimal("4000.00"),
                                                                        SETTLED)
    assert first.record == plain[0] and sep.record == odd  # the records as sent
    assert (sep.insutype, sep.med_type, sep.psn_part_amt) == ("310", "21", Decimal("7000.00"))
    # receipts of every sound record, members' or not, once each however often sent
    assert sorted(receipts) == sorted(Decimal(x["psn_part_amt"]) for x in [*plain, outsider, odd])
