""""Batch released" in the member's timeline (issue #13 item 2): payments names the lines of a released batch in
payment.batch_lines_released events of at most LINES_PER_EVENT lines (a 100,000-line batch stays far below the
1 MB message limit); claims keeps each line once, even when it arrives before the instruction's own event, and
GET /me/claims shows the step, with its date, between the instruction and the transfer's result."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from services.claims.member_claims import ClaimPaymentEvent, PaymentKind
from services.payments import batches
from services.payments.models import Batch
from shared.events import (
    Envelope,
    PaymentBatchLinesReleased,
    PaymentFailed,
    PaymentInstructionCreated,
    PaymentSettled,
    ReleasedLine,
)
from shared.messaging import encode
from tests.conftest import ServiceClient, apply_event
from tests.service.test_claims import claim_body, setup
from tests.service.test_claims_lifecycle import approve_through
from tests.service.test_payments_batches import CUTTER, World

MAX_MESSAGE = 1024 * 1024  # aiokafka's max_request_size and the broker's message.max.bytes by default


async def test_releasing_a_batch_names_each_line_with_its_claim_and_attempt(rolled_back: ServiceClient) -> None:
    app, client = await rolled_back("payments")
    w = World(app, client)
    mine = [await w.claim(aid) for aid in ("3460.00", "800.50", "120.00")]
    batch = await w.cut_and_release(3, "4380.50")
    bid = batch["batch_id"]
    events = [Envelope.model_validate(e) for e in await w.outbox(PaymentBatchLinesReleased.TYPE, bid)]
    assert [(e.payload["part"], e.payload["parts"]) for e in events] == [(1, 1)]
    released = PaymentBatchLinesReleased.model_validate(events[0].payload)
    assert len(released.lines) == batch["count"]  # every line of the batch, once
    async with app.state.db.transaction() as session:
        stored = await session.get(Batch, uuid.UUID(bid))
    assert stored is not None and released.released_at == stored.released_at
    by_claim = {line.claim_id: line for line in released.lines}
    for claim_id, _ in mine:
        [instruction] = await w.instructions(claim_id)
        line = by_claim[claim_id]
        assert (line.instruction_id, line.attempt, line.adjustment_id) == (instruction["instruction_id"], 1, None)
    # An unreleased cut names nothing yet.
    await w.claim("99.00")
    r = await client.post("/api/v1/payment-batches", json={"format": "bank_csv"}, headers=CUTTER)
    assert r.status_code == 201, r.text
    assert await w.outbox(PaymentBatchLinesReleased.TYPE, r.json()["batch_id"]) == []


async def test_a_large_batch_is_told_in_parts_each_below_the_message_limit(
        rolled_back: ServiceClient, monkeypatch: pytest.MonkeyPatch) -> None:
    # A part at its fullest, with the longest ids a line can carry, encoded as the relay sends it.
    longest = "9" * 40
    full = PaymentBatchLinesReleased(
        batch_id=str(uuid.uuid4()), released_at=datetime.now(UTC), part=1, parts=50,
        lines=[ReleasedLine(claim_id=longest, instruction_id=str(uuid.uuid4()), attempt=99, adjustment_id=longest)
               for _ in range(batches.LINES_PER_EVENT)])
    size = len(encode(full.envelope().model_dump(mode="json")))
    assert size < MAX_MESSAGE // 2, size
    assert 100_000 // batches.LINES_PER_EVENT <= 50  # 100,000 lines: 50 events

    # The split itself, with parts of 2 lines: 5 lines in 3 parts, in file order, none lost or repeated.
    monkeypatch.setattr(batches, "LINES_PER_EVENT", 2)
    app, client = await rolled_back("payments")
    w = World(app, client)
    claims = {(await w.claim(f"{100 + n}.00"))[0] for n in range(5)}
    bid = (await w.cut_and_release(5, "510.00"))["batch_id"]
    parts = [PaymentBatchLinesReleased.model_validate(e["payload"])
             for e in await w.outbox(PaymentBatchLinesReleased.TYPE, bid)]
    assert sorted(p.part for p in parts) == list(range(1, len(parts) + 1))
    assert {p.parts for p in parts} == {len(parts)} and all(len(p.lines) <= 2 for p in parts)
    lines = [line.instruction_id for p in sorted(parts, key=lambda p: p.part) for line in p.lines]
    assert len(parts) == 3 and len(lines) == len(set(lines)) == 5
    assert claims == {line.claim_id for p in parts for line in p.lines}


async def test_the_timeline_shows_the_batch_released_even_when_the_release_comes_first(
        rolled_back: ServiceClient) -> None:
    app, client, member = await setup(rolled_back)
    created = await client.post("/api/v1/claims", json=claim_body(member, base="5000.00"),
                                headers=member.branch.unit_agent())
    assert created.status_code == 201, created.text
    claim_id = created.json()["claim_id"]
    assert (await approve_through(client, member, claim_id))["status"] == "approved"

    first, second, batch_one, batch_two = (str(uuid.uuid4()) for _ in range(4))
    now = datetime.now(UTC)
    stranger = ReleasedLine(claim_id=str(uuid.uuid4()), instruction_id=str(uuid.uuid4()), attempt=1)

    def release(batch_id: str, instruction: str, attempt: int, at: datetime) -> PaymentBatchLinesReleased:
        return PaymentBatchLinesReleased(batch_id=batch_id, released_at=at, part=1, parts=1, lines=[
            stranger, ReleasedLine(claim_id=claim_id, instruction_id=instruction, attempt=attempt)])

    def at(payload: object, when: datetime) -> tuple[object, Envelope]:
        assert isinstance(payload, PaymentInstructionCreated | PaymentFailed | PaymentSettled)
        return payload, payload.envelope().model_copy(update={"occurred_at": when})

    amount = Decimal("1460.00")
    # The release of the first attempt's batch arrives before that instruction's own event; then the
    # instruction; the transfer fails; the second attempt is released (twice: a replay, and the relay's
    # second copy under a new event id) and paid.
    released_one = release(batch_one, first, 1, now + timedelta(hours=2))
    assert await apply_event(app, released_one)
    for payload, envelope in (
            at(PaymentInstructionCreated(instruction_id=first, claim_id=claim_id, member_id=member.member_id,
                                         attempt=1, amount=amount), now + timedelta(hours=1)),
            at(PaymentFailed(instruction_id=first, claim_id=claim_id, member_id=member.member_id, attempt=1,
                             reason="户名不符"), now + timedelta(days=1)),
            at(PaymentInstructionCreated(instruction_id=second, claim_id=claim_id, member_id=member.member_id,
                                         attempt=2, amount=amount), now + timedelta(days=2))):
        assert await apply_event(app, payload, envelope)  # type: ignore[arg-type]
    released_two = release(batch_two, second, 2, now + timedelta(days=3))
    envelope_two = released_two.envelope()
    assert await apply_event(app, released_two, envelope_two)
    assert not await apply_event(app, released_two, envelope_two)  # the same event again: the inbox skips it
    assert await apply_event(app, released_two)  # a copy under a new id: applied, adds no row
    payload, envelope = at(PaymentSettled(instruction_id=second, claim_id=claim_id, member_id=member.member_id,
                                          attempt=2, amount=amount), now + timedelta(days=4))
    assert await apply_event(app, payload, envelope)  # type: ignore[arg-type]

    async with app.state.db.transaction() as session:
        kept = (await session.execute(select(func.count()).select_from(ClaimPaymentEvent).where(
            ClaimPaymentEvent.claim_id == claim_id, ClaimPaymentEvent.kind == PaymentKind.RELEASED))).scalar_one()
        unknown = (await session.execute(select(func.count()).select_from(ClaimPaymentEvent).where(
            ClaimPaymentEvent.claim_id == stranger.claim_id))).scalar_one()
    assert kept == 2 and unknown == 1  # a claim not known here is kept all the same, once

    [mine] = (await client.get("/api/v1/me/claims", headers=member.token())).json()
    assert mine["status"] == "paid"
    kinds = [e["kind"] for e in mine["timeline"]]
    assert kinds[-7:] == ["approved", "payment_instruction", "batch_released", "payment_failed",
                          "payment_instruction", "batch_released", "paid"]
    first_release, second_release = [e for e in mine["timeline"] if e["kind"] == "batch_released"]
    assert datetime.fromisoformat(first_release["at"]) == now + timedelta(hours=2)
    beijing = (now + timedelta(days=3)).astimezone(batches.CHINA).date()
    assert f"{beijing.year}年{beijing.month}月{beijing.day}日" in second_release["text"]
    assert "放行" in second_release["text"]
    times = [e["at"] for e in mine["timeline"]]
    assert times == sorted(times)

