"""A broker that lost its data loses no event (issue #11, item 1), on the real Tansu broker and PostgreSQL.

Tansu's memory storage forgets everything when it stops, exactly the failure met in production when a
Kafka cluster is rebuilt: the relay had marked rows published, the new broker has none of them and no
topics. The broker watch notices (a new cluster id, missing topics, partitions that end below what the broker
had acked), recreates the topics with the configured partitions, and publishes again only what the consumer
groups had not confirmed; the consumer reads the new broker from the beginning.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError
from aiokafka.structs import TopicPartition
from sqlalchemy import Column, Integer, MetaData, String, Table, func, select
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from deploy.infra import Broker, Postgres, free_port
from shared.broker_watch import BrokerWatch, broker_lost, replay_since
from shared.db import Database
from shared.events import ALL_TOPICS, TOPIC_CLAIMS, ClaimApproved, Envelope, EventPayload
from shared.kafka import TopicMismatch, bounded, ensure_topics
from shared.messaging import Consumer, OutboxRelay, messaging_tables, publish
from tests.conftest import fresh_database

metadata = MetaData()
TABLES = messaging_tables(metadata)
effects = Table("effects", metadata, Column("id", Integer, primary_key=True), Column("claim_id", String(40)))
PARTITIONS = 3
GROUP = "payments-under-test"


async def record_effect(session: AsyncSession, _: Envelope, event: EventPayload) -> None:
    assert isinstance(event, ClaimApproved)
    await session.execute(effects.insert().values(claim_id=event.claim_id))


def approved(claim_id: str) -> ClaimApproved:
    return ClaimApproved(claim_id=claim_id, member_id="m-1", period="p", plan="inpatient",
                         aid_amount=Decimal("3460.00"), rulebook_code="yn-18")


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[Broker]:
    broker = Broker(free_port())
    broker.start(tmp_path / "broker.log")
    yield broker
    broker.stop()


def restart_empty(broker: Broker, tmp_path: Path) -> None:
    """SIGKILL the broker and start a new, empty one on the same port (a new cluster id)."""
    assert broker.process is not None
    broker.process.send_signal(signal.SIGKILL)
    broker.process.wait(10)
    broker.start(tmp_path / "broker-2.log")


@pytest.fixture
async def db(pg: Postgres) -> AsyncIterator[Database]:
    url = fresh_database(pg, f"brokerloss_{uuid.uuid4().hex[:8]}")
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    await engine.dispose()
    database = Database(url, pool_size=6)
    yield database
    await database.dispose()


async def scalar(db: Database, statement: object) -> int:
    async with db.transaction() as session:
        return int((await session.execute(statement)).scalar_one())  # type: ignore[call-overload]


# Waits poll for a condition with a generous bound: on a loaded machine (the suite shares two cores with other
# work) a broker restart, a group join and a replay can take tens of seconds. The bound only turns a hang into
# a failure naming what never happened; nothing here asserts how long anything took.
PATIENCE = 240.0


async def wait_until(condition: Callable[[], object], what: str, bound: float = PATIENCE) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + bound
    while not await condition():  # type: ignore[misc]
        if loop.time() > deadline:
            raise AssertionError(f"never happened within {bound:.0f} s: {what}")
        await asyncio.sleep(0.2)


async def losses_reach(watch: BrokerWatch, n: int) -> bool:
    return watch.losses >= n


async def write(db: Database, claim_ids: list[str]) -> None:
    async with db.transaction() as session:
        for claim_id in claim_ids:
            await publish(session, TABLES, TOPIC_CLAIMS, approved(claim_id))


async def test_a_broker_that_lost_its_data_gets_again_only_what_consumers_had_not_confirmed(
        db: Database, own_broker: Broker, tmp_path: Path) -> None:
    await ensure_topics(own_broker.bootstrap, PARTITIONS)
    producer = AIOKafkaProducer(bootstrap_servers=own_broker.bootstrap, acks="all", request_timeout_ms=5000)
    await producer.start()
    watch = BrokerWatch(db=db, tables=TABLES, bootstrap=own_broker.bootstrap, partitions=PARTITIONS,
                        replication=1, own_topics=(TOPIC_CLAIMS,), interval=0.3, confirm_every=1,
                        consumer_groups={TOPIC_CLAIMS: (GROUP,)},
                        # no window of recent confirmations re-sent: this test counts the unconfirmed alone
                        reconfirm_window=timedelta(0))
    relay = OutboxRelay(db, TABLES, producer, interval=0.05, on_regression=watch.hint.set)
    stop = asyncio.Event()

    def new_consumer() -> Consumer:
        consumer = Consumer(name=GROUP, db=db, tables=TABLES, handlers={"claim.approved": record_effect},
                            topics=[TOPIC_CLAIMS], bootstrap=own_broker.bootstrap, producer=producer)
        watch.consumer = consumer
        return consumer

    outbox = TABLES.outbox
    workers = [asyncio.create_task(relay.run(stop)), asyncio.create_task(watch.run(stop))]
    consumer_stop = asyncio.Event()
    consumer = new_consumer()
    consuming = asyncio.create_task(consumer.run(consumer_stop))
    try:
        first = [f"a-{i}" for i in range(20)]
        await write(db, first)

        async def all_applied(n: int) -> bool:
            return await scalar(db, select(func.count(func.distinct(effects.c.claim_id)))) >= n

        await wait_until(lambda: all_applied(20), "the first 20 events applied")

        async def confirmed(n: int) -> bool:
            return await scalar(db, select(func.count()).where(outbox.c.confirmed_at.is_not(None))) >= n

        # every consumer group committed past them
        await wait_until(lambda: confirmed(20), "the first 20 rows confirmed")

        # The consumer is down; ten more events reach the broker and nobody reads them.
        consumer_stop.set()
        await asyncio.wait_for(consuming, PATIENCE)
        await write(db, [f"b-{i}" for i in range(10)])

        async def published(n: int) -> bool:
            return await scalar(db, select(func.count()).where(outbox.c.published_at.is_not(None))) >= n

        await wait_until(lambda: published(30), "30 rows published")

        # The broker dies and comes back empty: no topics, no messages, no committed offsets.
        restart_empty(own_broker, tmp_path)
        await wait_until(lambda: losses_reach(watch, 1), "the first broker loss noticed")
        assert watch.republished == 10  # bounded: only what the consumers had not confirmed

        async def topics_back() -> bool:  # recreated by the watch with the configured partitions
            admin = AIOKafkaAdminClient(bootstrap_servers=own_broker.bootstrap, request_timeout_ms=5000)
            try:
                await admin.start()
                described = await admin.describe_topics(list(ALL_TOPICS))
            except KafkaError:  # the new broker still starting: asked again
                return False
            finally:
                await bounded(admin.close(), "the test's admin client close")
            return {t["topic"]: len(t["partitions"]) for t in described} == {t: PARTITIONS for t in ALL_TOPICS}

        await wait_until(topics_back, "the topics recreated with their partitions")

        # The consumer comes back and gets the ten it missed, each applied once.
        consumer_stop = asyncio.Event()
        consumer = new_consumer()
        consuming = asyncio.create_task(consumer.run(consumer_stop))
        await wait_until(lambda: all_applied(30), "the ten missed events applied")

        # Again, with the consumer running through it: events written after the new broker came up reach it.
        losses = watch.losses
        restart_empty(own_broker, tmp_path)
        await write(db, [f"c-{i}" for i in range(5)])
        await wait_until(lambda: losses_reach(watch, losses + 1), "the second broker loss noticed")
        await wait_until(lambda: all_applied(35), "the events written after the second loss applied")
        assert await scalar(db, select(func.count()).select_from(effects)) == 35  # nothing applied twice
    finally:
        consumer_stop.set()
        stop.set()
        for task in [*workers, consuming]:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, PATIENCE)
        await producer.stop()


async def test_a_topic_with_another_partition_count_is_refused_loudly(own_broker: Broker) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=own_broker.bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(TOPIC_CLAIMS, 4, 1)])  # as a broker's auto-creation would
    finally:
        await admin.close()
    with pytest.raises(TopicMismatch, match="partition count"):
        await ensure_topics(own_broker.bootstrap, PARTITIONS)


async def test_producers_never_create_topics(own_broker: Broker) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=own_broker.bootstrap, request_timeout_ms=2000)
    await producer.start()
    try:
        with pytest.raises(Exception):  # noqa: B017 - aiokafka raises UnknownTopicOrPartition or a timeout
            await asyncio.wait_for(producer.send_and_wait("nobody.created.this", b"x"), 10)
    finally:
        await producer.stop()
    admin = AIOKafkaAdminClient(bootstrap_servers=own_broker.bootstrap)
    await admin.start()
    try:
        assert "nobody.created.this" not in await admin.list_topics()
    finally:
        await admin.close()


async def test_the_operator_replay_publishes_again_what_was_written_since_a_time(
        db: Database, own_broker: Broker) -> None:
    await ensure_topics(own_broker.bootstrap, PARTITIONS)
    producer = AIOKafkaProducer(bootstrap_servers=own_broker.bootstrap, acks="all")
    await producer.start()
    try:
        await write(db, ["old-1", "old-2"])
        relay = OutboxRelay(db, TABLES, producer)
        assert await relay.publish_pending() == 2
        async with db.transaction() as session:
            since = (await session.execute(select(func.now()))).scalar_one()
        await write(db, ["new-1"])
        assert await relay.publish_pending() == 1
        assert await replay_since(db, TABLES, own_broker.bootstrap, PARTITIONS, 1, since) == 1
        assert await relay.publish_pending() == 1  # only the row written since then
    finally:
        await producer.stop()


async def test_offsets_committed_on_a_new_broker_before_the_loss_was_noticed_skip_nothing(
        db: Database, own_broker: Broker) -> None:
    """A client that met a new broker with the old one's positions commits past records it never read; once
    the loss is noticed (the service's broker epoch raised) the consumer reads every partition from its
    beginning whatever the group committed, and commits that beginning, once per epoch."""
    await ensure_topics(own_broker.bootstrap, PARTITIONS)
    producer = AIOKafkaProducer(bootstrap_servers=own_broker.bootstrap, acks="all")
    await producer.start()
    relay = OutboxRelay(db, TABLES, producer, batch_size=1)  # a record per batch: end offsets are exact
    stop = asyncio.Event()
    consuming: list[asyncio.Task[None]] = []
    try:
        async with db.transaction() as session:  # the watch noticed a new broker: the broker epoch is raised
            await broker_lost(session, TABLES, "huzhu-new", "test: a new broker", timedelta(0))
        await write(db, [f"s-{i}" for i in range(9)])
        while await relay.publish_pending():
            pass
        tps = [TopicPartition(TOPIC_CLAIMS, p) for p in range(PARTITIONS)]
        stale = AIOKafkaConsumer(bootstrap_servers=own_broker.bootstrap, group_id=GROUP, enable_auto_commit=False)
        await stale.start()
        try:
            stale.assign(tps)
            ends = await stale.end_offsets(tps)
            assert sum(ends.values()) == 9
            # Positions of the old broker's numbering, committed before this consumer noticed the swap: past
            # every record of the new broker, none of which was read.
            await stale.commit(ends)
        finally:
            await bounded(stale.stop(), "the stale client's stop")

        def start_consumer() -> Consumer:
            consumer = Consumer(name=GROUP, db=db, tables=TABLES, handlers={"claim.approved": record_effect},
                                topics=[TOPIC_CLAIMS], bootstrap=own_broker.bootstrap, producer=producer)
            consuming.append(asyncio.create_task(consumer.run(stop)))
            return consumer

        async def applied(n: int) -> bool:
            return await scalar(db, select(func.count(func.distinct(effects.c.claim_id)))) >= n

        start_consumer()
        await wait_until(lambda: applied(9), "the nine records behind the stale offsets applied")
        stop.set()
        await asyncio.wait_for(consuming.pop(), PATIENCE)

        # The beginning it read from was committed and marked for this epoch: a restart (or a replica taking
        # the partitions over) in the same epoch trusts the group's offsets again and reads nothing twice.
        stop = asyncio.Event()
        second = start_consumer()
        await write(db, [f"t-{i}" for i in range(3)])
        while await relay.publish_pending():
            pass
        await wait_until(lambda: applied(12), "the three records written after the restart applied")
        assert second.duplicates == 0
        assert await scalar(db, select(func.count()).select_from(effects)) == 12
    finally:
        stop.set()
        for task in consuming:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, PATIENCE)
        await producer.stop()
