"""The outbox relay and the inbox consumer against the real Tansu broker and real PostgreSQL.

A small table of "effects" stands in for a service's state: the handler inserts one row per event applied,
so an event applied twice would show as two rows.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from decimal import Decimal

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from sqlalchemy import Column, Integer, MetaData, String, Table, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from deploy.infra import Broker, Postgres
from shared.db import Database
from shared.events import TOPIC_DEAD_LETTER, ClaimApproved, Envelope, EventPayload
from shared.kafka import ensure_topics
from shared.messaging import Consumer, OutboxRelay, messaging_tables, publish
from tests.conftest import fresh_database

metadata = MetaData()
TABLES = messaging_tables(metadata)
effects = Table("effects", metadata, Column("id", Integer, primary_key=True), Column("claim_id", String(40)))


async def record_effect(session: AsyncSession, _: Envelope, event: EventPayload) -> None:
    assert isinstance(event, ClaimApproved)
    await session.execute(effects.insert().values(claim_id=event.claim_id))


def approved(claim_id: str) -> ClaimApproved:
    return ClaimApproved(claim_id=claim_id, member_id="m-1", period="p", plan="inpatient",
                         aid_amount=Decimal("3460.00"), rulebook_code="yn-18")


@pytest.fixture
async def db(pg: Postgres) -> AsyncIterator[Database]:
    url = fresh_database(pg, f"messaging_{uuid.uuid4().hex[:8]}")
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    await engine.dispose()
    database = Database(url, pool_size=4)
    yield database
    await database.dispose()


@pytest.fixture
async def topic(broker: Broker) -> str:
    name = f"test.{uuid.uuid4().hex[:8]}"
    await ensure_topics(broker.bootstrap, 3, topics=(name, TOPIC_DEAD_LETTER))
    return name


@pytest.fixture
async def producer(broker: Broker) -> AsyncIterator[AIOKafkaProducer]:
    p = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, acks="all", enable_idempotence=False)
    await p.start()
    yield p
    await p.stop()


async def count_effects(db: Database, claim_id: str) -> int:
    async with db.transaction() as session:
        return int((await session.execute(select(func.count()).where(effects.c.claim_id == claim_id))).scalar_one())


async def run_consumer_until(consumer: Consumer, condition: Callable[[], bool], timeout: float = 60) -> None:
    """Run the consumer against the broker until ``condition()`` holds (polled), then stop it."""
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    try:
        async with asyncio.timeout(timeout):
            while not condition():
                await asyncio.sleep(0.1)
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


async def test_the_relay_publishes_each_outbox_row_once_and_marks_it(db: Database, topic: str,
                                                                      producer: AIOKafkaProducer,
                                                                      broker: Broker) -> None:
    async with db.transaction() as session:
        for i in range(5):
            await publish(session, TABLES, topic, approved(f"c-{i}"))
    relay = OutboxRelay(db, TABLES, producer)
    assert await relay.publish_pending() == 5
    assert await relay.publish_pending() == 0  # nothing left unpublished
    async with db.transaction() as session:
        unpublished = (await session.execute(select(func.count()).where(TABLES.outbox.c.published_at.is_(None))))
        assert unpublished.scalar_one() == 0
    reader = AIOKafkaConsumer(topic, bootstrap_servers=broker.bootstrap, group_id=f"r-{topic}",
                              auto_offset_reset="earliest", enable_auto_commit=False)
    await reader.start()
    try:
        seen: list[dict[str, object]] = []
        for _ in range(20):
            for records in (await reader.getmany(timeout_ms=500)).values():
                seen += [json.loads(r.value or b"") | {"_key": (r.key or b"").decode()} for r in records]
            if len(seen) >= 5:
                break
    finally:
        await reader.stop()
    assert sorted(m["key"] for m in seen) == [f"c-{i}" for i in range(5)]
    assert all(m["_key"] == m["key"] and m["type"] == "claim.approved" for m in seen)


async def test_an_event_published_twice_is_applied_once(db: Database, topic: str, producer: AIOKafkaProducer,
                                                        broker: Broker) -> None:
    claim_id = f"c-{uuid.uuid4().hex[:6]}"
    async with db.transaction() as session:
        await publish(session, TABLES, topic, approved(claim_id))
    relay = OutboxRelay(db, TABLES, producer)
    assert await relay.publish_pending() == 1
    # The relay crashed after the broker's ack and before marking the row: it publishes the row again.
    async with db.transaction() as session:
        await session.execute(update(TABLES.outbox).values(published_at=None))
    assert await relay.publish_pending() == 1
    consumer = Consumer(name=f"c-{topic}", db=db, tables=TABLES, handlers={"claim.approved": record_effect},
                        topics=[topic], bootstrap=broker.bootstrap, producer=producer)
    # Both copies reach the consumer: the first is applied, the second is found in the inbox and skipped.
    await run_consumer_until(consumer, lambda: consumer.applied + consumer.duplicates >= 2)
    assert (consumer.applied, consumer.duplicates) == (1, 1)
    assert await count_effects(db, claim_id) == 1


async def test_a_malformed_message_goes_to_the_dead_letter_topic_and_the_next_is_applied(
        db: Database, topic: str, producer: AIOKafkaProducer, broker: Broker) -> None:
    claim_id = f"c-{uuid.uuid4().hex[:6]}"
    bad_payload = approved(claim_id).envelope().model_dump(mode="json")
    bad_payload["payload"]["aid_amount"] = "not money"
    # All on one key, so one partition, in this order: garbage, a bad payload, then a good event.
    await producer.send_and_wait(topic, b"{not json", key=b"k")
    await producer.send_and_wait(topic, json.dumps(bad_payload).encode(), key=b"k")
    await producer.send_and_wait(topic, approved(claim_id).envelope().model_dump_json().encode(), key=b"k")
    consumer = Consumer(name=f"c-{topic}", db=db, tables=TABLES, handlers={"claim.approved": record_effect},
                        topics=[topic], bootstrap=broker.bootstrap, producer=producer)
    await run_consumer_until(consumer, lambda: consumer.applied >= 1)
    assert consumer.dead_lettered == 2
    assert await count_effects(db, claim_id) == 1
    reader = AIOKafkaConsumer(TOPIC_DEAD_LETTER, bootstrap_servers=broker.bootstrap, group_id=f"dlq-{topic}",
                              auto_offset_reset="earliest", enable_auto_commit=False)
    await reader.start()
    try:
        reasons: list[str] = []
        for _ in range(20):
            for records in (await reader.getmany(timeout_ms=500)).values():
                reasons += [json.loads(r.value or b"")["reason"] for r in records
                            if json.loads(r.value or b"")["topic"] == topic]
            if len(reasons) >= 2:
                break
    finally:
        await reader.stop()
    assert any(r.startswith("invalid envelope") for r in reasons)
    assert any(r.startswith("invalid payload for claim.approved") and "aid_amount" in r for r in reasons)
