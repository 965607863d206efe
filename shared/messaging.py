"""Outbox and inbox: at-least-once delivery, exactly-once effects (docs/ARCHITECTURE.md "Nothing lost, nothing applied twice").

- ``publish(session, topic, payload)`` writes the event into the outbox in the caller's transaction, so a
  state change and the events it causes commit together.
- :class:`OutboxRelay` publishes unpublished rows (``FOR UPDATE SKIP LOCKED``, several relays may run),
  waits for the broker's acks and only then marks them. A crash between ack and mark re-publishes; the
  inbox on the consuming side makes that harmless.
- :class:`Consumer` applies an event and records ``(consumer, event_id)`` in the inbox in one transaction,
  and commits the Kafka offset only after that transaction. A message whose envelope or payload fails
  validation goes to the dead-letter topic with the reason; it never crashes the consumer nor blocks the
  partition.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord, TopicPartition
from pydantic import ValidationError
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    delete,
    func,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID, insert
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import Database
from shared.events import TOPIC_DEAD_LETTER, Envelope, EventPayload, parse_payload
from shared.kafka import bounded, cancelled_from_inside
from shared.observability import correlation_id_var
from shared.parking import MAX_BACKOFF, ReferenceMissing, backoff, parked_table, provides

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MessagingTables:
    outbox: Table
    inbox: Table
    parked: Table  # events waiting for a reference (shared.parking)
    broker: Table  # what this service knows of the broker: its cluster id, epoch, last acked offsets


def messaging_tables(metadata: MetaData) -> MessagingTables:
    """The outbox and inbox, declared on a service's own metadata (each service has its own database)."""
    outbox = Table(
        "outbox",
        metadata,
        Column("seq", BigInteger, primary_key=True, autoincrement=True),  # order of writing, not a watermark
        Column("event_id", UUID(as_uuid=True), nullable=False, unique=True),
        Column("topic", String(100), nullable=False),
        Column("key", String(100), nullable=False),
        Column("type", String(100), nullable=False),
        Column("envelope", JSONB, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("published_at", DateTime(timezone=True)),
        Column("attempts", Integer, nullable=False, server_default="0"),
        # Where the broker put the row (shared.broker_watch): the epoch is this service's count of brokers
        # that lost their data; a row every consumer group has committed past is confirmed and never
        # published again, an unconfirmed one is published again to a broker that lost its data.
        Column("published_epoch", Integer),
        Column("partition", Integer),
        Column("offset", BigInteger),
        Column("confirmed_at", DateTime(timezone=True)),
        Index("ix_outbox_unconfirmed", "topic", "partition", "offset",
              postgresql_where=text("published_at IS NOT NULL AND confirmed_at IS NULL")),
        Index("ix_outbox_unpublished", "seq", postgresql_where=text("published_at IS NULL")),
        Index("ix_outbox_created_at", "created_at"),
    )
    inbox = Table(
        "inbox",
        metadata,
        Column("consumer", String(100), primary_key=True),
        Column("event_id", UUID(as_uuid=True), primary_key=True),
        Column("type", String(100), nullable=False),
        Column("processed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    )
    broker = Table(
        "broker_partitions",
        metadata,
        # topic '' partition -1 is the broker itself: max_offset holds the epoch, cluster_id the cluster's id.
        Column("topic", String(100), primary_key=True),
        Column("partition", Integer, primary_key=True, autoincrement=False),
        Column("max_offset", BigInteger, nullable=False),
        Column("cluster_id", String(200)),
        Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    )
    return MessagingTables(outbox=outbox, inbox=inbox, parked=parked_table(metadata), broker=broker)


def _outbox_row(topic: str, payload: EventPayload) -> tuple[Envelope, dict[str, Any]]:
    envelope = payload.envelope()
    return envelope, {"event_id": envelope.event_id, "topic": topic, "key": envelope.key, "type": envelope.type,
                      "envelope": envelope.model_dump(mode="json")}


async def publish(session: AsyncSession, tables: MessagingTables, topic: str, payload: EventPayload) -> Envelope:
    envelope, row = _outbox_row(topic, payload)
    await session.execute(tables.outbox.insert().values(**row))
    return envelope


async def publish_many(session: AsyncSession, tables: MessagingTables, topic: str,
                       payloads: Sequence[EventPayload]) -> None:
    """Many events in the caller's transaction in one round trip per thousand (a roster of 200,000 members)."""
    rows = [_outbox_row(topic, payload)[1] for payload in payloads]
    for start in range(0, len(rows), 1000):
        await session.execute(tables.outbox.insert(), rows[start:start + 1000])


BROKER_ROW = ("", -1)  # the broker_partitions row holding this service's broker epoch and the cluster id
# A consumer's partition read again from its beginning in a broker epoch: topic "rewound <topic>", partition
# -2 - p, max_offset the epoch (negative partitions are never taken for acked offsets).
REWOUND_PREFIX = "rewound "


def rewound_key(tp: TopicPartition) -> tuple[str, int]:
    return (f"{REWOUND_PREFIX}{tp.topic}", -2 - tp.partition)


async def current_epoch(session: AsyncSession, tables: MessagingTables) -> int:
    broker = tables.broker
    epoch = (await session.execute(select(broker.c.max_offset).where(
        broker.c.topic == BROKER_ROW[0], broker.c.partition == BROKER_ROW[1]))).scalar_one_or_none()
    return int(epoch or 0)


def encode(envelope: Mapping[str, Any]) -> bytes:
    return json.dumps(envelope, ensure_ascii=False, separators=(",", ":")).encode()


class OutboxRelay:
    def __init__(
        self, db: Database, tables: MessagingTables, producer: AIOKafkaProducer, *,
        batch_size: int = 200, interval: float = 0.2, on_regression: Callable[[], None] | None = None,
    ) -> None:
        self.db, self.tables, self.producer = db, tables, producer
        self.batch_size, self.interval = batch_size, interval
        self.published = 0
        # Called when the broker acks an offset below one it acked before on the same partition: the broker
        # may have lost its data (shared.broker_watch checks at once).
        self.on_regression = on_regression

    async def publish_pending(self) -> int:
        """Publish one batch of unpublished rows; return how many were published."""
        outbox = self.tables.outbox
        async with self.db.transaction() as session:
            rows = (
                await session.execute(
                    select(outbox.c.seq, outbox.c.topic, outbox.c.key, outbox.c.envelope)
                    .where(outbox.c.published_at.is_(None))
                    .order_by(outbox.c.seq)
                    .limit(self.batch_size)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            if not rows:
                return 0
            # Send all, then wait for every ack before marking: a crash in between re-publishes.
            futures = [
                await self.producer.send(row.topic, encode(row.envelope), key=row.key.encode())
                for row in rows
            ]
            acks = await asyncio.gather(*futures)
            epoch = await current_epoch(session, self.tables)
            now = datetime.now(UTC)
            await session.execute(
                update(outbox).where(outbox.c.seq == bindparam("b_seq")).values(
                    published_at=now, attempts=outbox.c.attempts + 1, published_epoch=epoch,
                    partition=bindparam("b_partition"), offset=bindparam("b_offset"), confirmed_at=None),
                [{"b_seq": row.seq, "b_partition": ack.partition, "b_offset": ack.offset}
                 for row, ack in zip(rows, acks, strict=True)],
            )
            # The highest offset acked per partition: a broker whose end offset falls below it lost our rows.
            highest: dict[tuple[str, int], int] = {}
            for row, ack in zip(rows, acks, strict=True):
                highest[(row.topic, ack.partition)] = max(highest.get((row.topic, ack.partition), -1), ack.offset)
            broker = self.tables.broker
            before = {(r.topic, r.partition): r.max_offset for r in (await session.execute(
                select(broker.c.topic, broker.c.partition, broker.c.max_offset).where(
                    broker.c.partition >= 0, broker.c.topic.in_({t for t, _ in highest})))).all()}
            if self.on_regression is not None and any(
                    offset < before.get(tp, -1) for tp, offset in highest.items()):
                self.on_regression()
            stmt = insert(broker).values([{"topic": t, "partition": p, "max_offset": o}
                                          for (t, p), o in sorted(highest.items())])
            await session.execute(stmt.on_conflict_do_update(
                index_elements=["topic", "partition"],
                set_={"max_offset": func.greatest(broker.c.max_offset, stmt.excluded.max_offset),
                      "updated_at": func.now()}))
        self.published += len(rows)
        return len(rows)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                if await self.publish_pending() == self.batch_size:
                    continue
            except asyncio.CancelledError:
                if not cancelled_from_inside(stop):
                    raise
                log.warning("outbox relay: the Kafka producer raised CancelledError; retrying")
                await asyncio.sleep(1)
            except Exception:
                log.exception("outbox relay failed; retrying")
                await asyncio.sleep(1)
            try:
                await asyncio.wait_for(stop.wait(), timeout=self.interval)
            except TimeoutError:
                pass


Handler = Callable[[AsyncSession, Envelope, EventPayload], Awaitable[None]]


class PoisonEvent(Exception):
    """A handler found an event it can never apply: it goes to the dead-letter topic, with the reason."""


class Consumer:
    """One consumer group reading some topics and applying events through handlers, each exactly once."""

    def __init__(
        self, *, name: str, db: Database, tables: MessagingTables, handlers: Mapping[str, Handler],
        topics: list[str], bootstrap: str, producer: AIOKafkaProducer, fault_point: str = "",
    ) -> None:
        self.name, self.db, self.tables, self.handlers = name, db, tables, dict(handlers)
        self.topics, self.bootstrap, self.producer = topics, bootstrap, producer
        self.fault_point = fault_point
        self.applied = 0
        self.duplicates = 0  # redelivered events the inbox skipped
        self.dead_lettered = 0
        self.kafka: AIOKafkaConsumer | None = None  # the running client, for the lag gauge
        self.parked = 0  # events parked until their reference is known
        self.reset_requested = False  # set by the broker watch: the broker lost its data
        self.epoch_check_every = 2.0  # seconds between looks at the broker epoch (another replica may raise it)
        self._next_epoch_check = 0.0

    async def _dead_letter(self, record: ConsumerRecord[bytes, bytes], reason: str) -> None:
        body = {
            "consumer": self.name, "topic": record.topic, "partition": record.partition,
            "offset": record.offset, "reason": reason[:2000],
            "value": (record.value or b"").decode(errors="replace"),
        }
        await self.producer.send_and_wait(TOPIC_DEAD_LETTER, encode(body), key=record.key)
        self.dead_lettered += 1
        log.warning("dead-lettered a message", extra={"fields": {"topic": record.topic, "reason": reason[:200]}})

    async def apply(self, envelope: Envelope, payload: EventPayload, *, parked: bool = False) -> bool:
        """Apply one event in one transaction with its inbox row; False when it was applied before, or when
        its reference is not known yet and it was parked to be applied later (shared.parking)."""
        handler = self.handlers[envelope.type]
        try:
            async with self.db.transaction() as session:
                inserted = await session.execute(
                    insert(self.tables.inbox)
                    .values(consumer=self.name, event_id=envelope.event_id, type=envelope.type)
                    .on_conflict_do_nothing()
                    .returning(self.tables.inbox.c.event_id)
                )
                if parked:
                    await session.execute(delete(self.tables.parked).where(
                        self.tables.parked.c.consumer == self.name,
                        self.tables.parked.c.event_id == envelope.event_id))
                if inserted.first() is None:
                    self.duplicates += 1
                    return False
                await handler(session, envelope, payload)
                references = provides(payload)
                if references:
                    # Events waiting for what this one makes known are applied next, not after their backoff.
                    parked_events = self.tables.parked
                    await session.execute(update(parked_events).where(
                        parked_events.c.consumer == self.name, parked_events.c.reference.in_(references),
                    ).values(next_attempt_at=func.now()))
        except ReferenceMissing as missing:
            await self._park(envelope, missing)
            return False
        self.applied += 1
        return True

    async def _park(self, envelope: Envelope, missing: ReferenceMissing) -> None:
        parked = self.tables.parked
        async with self.db.transaction() as session:
            stmt = insert(parked).values(
                consumer=self.name, event_id=envelope.event_id, type=envelope.type, reference=missing.reference,
                envelope=envelope.model_dump(mode="json"), attempts=1, reason=str(missing)[:500],
                next_attempt_at=func.now() + backoff(1))
            await session.execute(stmt.on_conflict_do_update(
                index_elements=["consumer", "event_id"],
                set_={"attempts": parked.c.attempts + 1, "reference": missing.reference,
                      "reason": str(missing)[:500],
                      # 1 s, 2 s, 4 s ... capped: least(2^attempts, cap) seconds from now
                      "next_attempt_at": func.now() + func.make_interval(0, 0, 0, 0, 0, 0, func.least(
                          func.power(2, parked.c.attempts), MAX_BACKOFF.total_seconds()))}))
        self.parked += 1
        log.info("event parked until its reference is known",
                 extra={"fields": {"type": envelope.type, "reference": missing.reference}})

    async def apply_parked(self, limit: int = 100) -> int:
        """Apply again the parked events that are due (woken by their reference, or past their backoff)."""
        parked = self.tables.parked
        async with self.db.transaction() as session:
            rows = (await session.execute(
                select(parked.c.envelope).where(parked.c.consumer == self.name,
                                                parked.c.next_attempt_at <= func.now())
                .order_by(parked.c.parked_at).limit(limit))).scalars().all()
        applied = 0
        for raw in rows:
            envelope = Envelope.model_validate(raw)
            payload = parse_payload(envelope)
            token = correlation_id_var.set(envelope.correlation_id)
            try:
                if await self.apply(envelope, payload, parked=True):
                    applied += 1
            except PoisonEvent as exc:
                log.warning("a parked event cannot be applied; dropped",
                            extra={"fields": {"type": envelope.type, "reason": str(exc)[:200]}})
                async with self.db.transaction() as session:
                    await session.execute(delete(parked).where(parked.c.consumer == self.name,
                                                               parked.c.event_id == envelope.event_id))
            finally:
                correlation_id_var.reset(token)
        return applied

    def _maybe_crash(self, point: str, event_type: str) -> None:
        # Fault injection for the delivery tests: a real SIGKILL at a named point (local stack only).
        if self.fault_point == f"{point}:{event_type}":
            log.warning("fault point reached, killing the process", extra={"fields": {"point": point}})
            os.kill(os.getpid(), signal.SIGKILL)

    async def handle_record(self, record: ConsumerRecord[bytes, bytes]) -> None:
        try:
            envelope = Envelope.model_validate_json(record.value or b"")
        except ValidationError as exc:
            await self._dead_letter(record, f"invalid envelope: {exc}")
            return
        if envelope.type not in self.handlers:
            return  # not this consumer's business
        try:
            payload = parse_payload(envelope)
        except (ValidationError, ValueError) as exc:
            await self._dead_letter(record, f"invalid payload for {envelope.type}: {exc}")
            return
        token = correlation_id_var.set(envelope.correlation_id)
        try:
            while True:
                try:
                    await self.apply(envelope, payload)
                    break
                except PoisonEvent as exc:
                    await self._dead_letter(record, f"{envelope.type} cannot be applied: {exc}")
                    break
                except asyncio.CancelledError:
                    raise
                except Exception:
                    # A transient failure (database restarting): retry this message, never skip it.
                    log.exception("applying an event failed; retrying", extra={"fields": {"type": envelope.type}})
                    await asyncio.sleep(1)
            self._maybe_crash("after_db_commit", envelope.type)
        finally:
            correlation_id_var.reset(token)

    def _client(self) -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            *self.topics,
            bootstrap_servers=self.bootstrap,
            group_id=self.name,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=200,
            metadata_max_age_ms=5000,  # a topic recreated on a new broker is seen within seconds
        )

    async def run(self, stop: asyncio.Event, ready: asyncio.Event | None = None) -> None:
        while not stop.is_set():
            consumer = self._client()
            try:
                await self._consume(consumer, stop, ready)
            except asyncio.CancelledError:
                if not cancelled_from_inside(stop):
                    raise
                # aiokafka cancels its own futures when a broker connection dies: not a stop, a new client.
                log.warning("consumer: the Kafka client raised CancelledError; starting a new client")
                await asyncio.sleep(1)
            finally:
                # Bounded and never raising: aiokafka's stop can hang or raise CancelledError of its own.
                await bounded(consumer.stop(), "the consumer's Kafka client stop")
            if self.reset_requested and not stop.is_set():
                # A broker that lost its data has none of our positions nor our group: a new client joins
                # the group afresh, and each partition is read again from its beginning (_rewind_stale).
                self.reset_requested = False
                log.warning("consumer restarted from the beginning after the broker lost its data")

    async def _rewind_stale(self, consumer: AIOKafkaConsumer) -> None:
        """Read again from its beginning every assigned partition not yet read from the beginning in this
        broker epoch, and commit that beginning. Offsets the group committed on a new broker before the loss
        was noticed came from the old broker's numbering (fetch positions kept across the swap, a record of
        the old broker committed late): resumed from after a rebalance or a restart, they would skip records
        never read. The mark is per partition and in the database: a replica or a restarted process that
        takes the partition over in the same epoch rewinds it too, unless it was done."""
        assignment = consumer.assignment()
        if not assignment:
            return
        broker = self.tables.broker
        async with self.db.transaction() as session:
            epoch = await current_epoch(session, self.tables)
            if epoch == 0:
                return  # the first broker this service met: its committed offsets are its own
            done = {(r.topic, r.partition): r.max_offset for r in (await session.execute(
                select(broker.c.topic, broker.c.partition, broker.c.max_offset).where(
                    broker.c.topic.startswith(REWOUND_PREFIX), broker.c.partition <= -2))).all()}
        stale = sorted((tp for tp in assignment if done.get(rewound_key(tp), 0) < epoch),
                       key=lambda tp: (tp.topic, tp.partition))
        if not stale:
            return
        starts = await consumer.beginning_offsets(stale)
        for tp in stale:
            consumer.seek(tp, starts[tp])
        await consumer.commit({tp: starts[tp] for tp in stale})
        async with self.db.transaction() as session:
            stmt = insert(broker).values([{"topic": rewound_key(tp)[0], "partition": rewound_key(tp)[1],
                                           "max_offset": epoch} for tp in stale])
            await session.execute(stmt.on_conflict_do_update(
                index_elements=["topic", "partition"],
                set_={"max_offset": func.greatest(broker.c.max_offset, stmt.excluded.max_offset),
                      "updated_at": func.now()}))
        log.warning("consumer reads partitions again from their beginning in a new broker epoch",
                    extra={"fields": {"epoch": epoch, "partitions": [f"{tp.topic}[{tp.partition}]" for tp in stale]}})

    async def _consume(self, consumer: AIOKafkaConsumer, stop: asyncio.Event, ready: asyncio.Event | None) -> None:
        self.kafka = consumer  # the running client, for the lag gauge (shared/ops_metrics.py)
        while not stop.is_set():
            try:
                await consumer.start()
                break
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("consumer could not reach the broker; retrying")
                await asyncio.sleep(1)
        if ready is not None:
            ready.set()
        self._next_epoch_check = 0.0  # a new client: look at once
        loop = asyncio.get_running_loop()
        while not stop.is_set() and not self.reset_requested:
            if loop.time() >= self._next_epoch_check and consumer.assignment():
                try:
                    await self._rewind_stale(consumer)
                    self._next_epoch_check = loop.time() + self.epoch_check_every
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.warning("could not rewind the consumer's partitions; retrying", exc_info=True)
            try:
                await self.apply_parked()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("applying parked events failed; retrying later")
            batches = await consumer.getmany(timeout_ms=500)
            for tp, records in batches.items():
                for record in records:
                    await self.handle_record(record)
                    # Offset after the database commit: a crash here redelivers, the inbox skips it.
                    try:
                        await consumer.commit({TopicPartition(tp.topic, tp.partition): record.offset + 1})
                    except KafkaError:
                        # The rest of this batch is fetched again from the first uncommitted message
                        # (a rebalance that took the partition away gives it to its new owner instead).
                        log.warning("offset commit failed; the message will be redelivered", exc_info=True)
                        with contextlib.suppress(Exception):
                            consumer.seek(TopicPartition(tp.topic, tp.partition), record.offset + 1)
                        break
