"""A bureau feed is one transaction (issue #12 item 1, README "Bureau data"): a feed cut off after some of its
batches were written keeps none of them. The batches go to PostgreSQL through the driver (COPY-like statements
beside SQLAlchemy), which would run outside the transaction if the session had not begun it first
(shared/db.py ``driver_connection``)."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator
from typing import Any

import pytest

from services.claims.settlements import reading
from services.claims.settlements import service as feed_service
from tests.conftest import ServiceClient
from tests.service.test_claims import bureau, setup
from tests.service.test_settlement_feeds import as_ndjson, kept, stay


async def test_a_feed_cut_off_after_its_first_batches_were_written_keeps_nothing(
        service_client: ServiceClient, monkeypatch: pytest.MonkeyPatch) -> None:
    # committed data: a rolled-back test's outer transaction would hide a write that escaped the feed's own
    app, client, member = await setup(service_client)
    monkeypatch.setattr(reading, "BLOCK", 10)  # blocks of 10 lines, written 5 records at a time
    monkeypatch.setattr(feed_service, "BATCH", 5)
    written: list[int] = []
    write_batch = feed_service.write_batch

    async def counted(conn: Any, actor: Any, batch: Any, tally: Any) -> None:
        written.append(len(batch))
        await write_batch(conn, actor, batch, tally)

    monkeypatch.setattr(feed_service, "write_batch", counted)
    data = gzip.compress(as_ndjson([stay(member) for _ in range(400)]))

    async def sent(body: bytes) -> AsyncIterator[bytes]:  # as a bureau's upload arrives: a piece at a time
        for start in range(0, len(body), 1024):
            yield body[start:start + 1024]
            await asyncio.sleep(0.01)

    headers = {**bureau(member.branch), "Content-Type": "application/x-ndjson"}
    r = await client.post("/api/v1/settlements", headers=headers, content=sent(data[: len(data) * 3 // 4]))
    assert r.status_code == 422 and r.json()["code"] == "invalid_gzip", r.text
    assert sum(written) >= 100, written  # batches were written before the cut...
    assert await kept(app, member.certno) == set()  # ...and none of them is kept
    # the same feed whole is kept whole
    r = await client.post("/api/v1/settlements", headers=headers, content=sent(data))
    assert r.status_code == 200 and r.json()["accepted"] == 400, r.text
    assert len(await kept(app, member.certno)) == 400
