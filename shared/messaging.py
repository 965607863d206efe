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
import json
import logging
import os
import signal
from collections.abc import Awaitable, Callable, Mapping
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
    Integer,
    MetaData,
    String,
    Table,
    func,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID, insert
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import Database
from shared.events import TOPIC_DEAD_LETTER, Envelope, EventPayload, parse_payload
from shared.observability import correlation_id_var

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MessagingTables:
    outbox: Table
    inbox: Table


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
    )
    inbox = Table(
        "inbox",
        metadata,
        Column("consumer", String(100), primary_key=True),
        Column("event_id", UUID(as_uuid=True), primary_key=True),
        Column("type", String(100), nullable=False),
        Column("processed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    )
    return MessagingTables(outbox=outbox, inbox=inbox)


def _outbox_row(topic: str, payload: EventPayload) -> tuple[Envelope, dict[str, Any]]:
    envelope = payload.envelope()
    return envelope, {"event_id": envelope.event_id, "topic": topic, "key": envelope.key, "type": envelope.type,
                      "envelope": envelope.model_dump(mode="json")}


async def publish(session: AsyncSession, tables: MessagingTables, topic: str, payload: EventPayload) -> Envelope:
    envelope, row = _outbox_row(topic, payload)
    await session.execute(tables.outbox.insert().values(**row))
    return envelope


async def publish_many(session: AsyncSession, tables: MessagingTables, topic: str,
                       payloads: list[EventPayload]) -> None:
    """Many events in the caller's transaction in one round trip per thousand (a roster of 200,000 members)."""
    rows = [_outbox_row(topic, payload)[1] for payload in payloads]
    for start in range(0, len(rows), 1000):
        await session.execute(tables.outbox.insert(), rows[start:start + 1000])


def encode(envelope: Mapping[str, Any]) -> bytes:
    return json.dumps(envelope, ensure_ascii=False, separators=(",", ":")).encode()


class OutboxRelay:
    def __init__(
        self, db: Database, tables: MessagingTables, producer: AIOKafkaProducer, *,
        batch_size: int = 200, interval: float = 0.2,
    ) -> None:
        self.db, self.tables, self.producer = db, tables, producer
        self.batch_size, self.interval = batch_size, interval
        self.published = 0

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
            await asyncio.gather(*futures)
            await session.execute(
                update(outbox)
                .where(outbox.c.seq.in_([row.seq for row in rows]))
                .values(published_at=datetime.now(UTC), attempts=outbox.c.attempts + 1)
            )
        self.published += len(rows)
        return len(rows)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                if await self.publish_pending() == self.batch_size:
                    continue
            except asyncio.CancelledError:
                raise
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

    async def _dead_letter(self, record: ConsumerRecord[bytes, bytes], reason: str) -> None:
        body = {
            "consumer": self.name, "topic": record.topic, "partition": record.partition,
            "offset": record.offset, "reason": reason[:2000],
            "value": (record.value or b"").decode(errors="replace"),
        }
        await self.producer.send_and_wait(TOPIC_DEAD_LETTER, encode(body), key=record.key)
        self.dead_lettered += 1
        log.warning("dead-lettered a message", extra={"fields": {"topic": record.topic, "reason": reason[:200]}})

    async def apply(self, envelope: Envelope, payload: EventPayload) -> bool:
        """Apply one event in one transaction with its inbox row; False when it was applied before."""
        handler = self.handlers[envelope.type]
        async with self.db.transaction() as session:
            inserted = await session.execute(
                insert(self.tables.inbox)
                .values(consumer=self.name, event_id=envelope.event_id, type=envelope.type)
                .on_conflict_do_nothing()
                .returning(self.tables.inbox.c.event_id)
            )
            if inserted.first() is None:
                self.duplicates += 1
                return False
            await handler(session, envelope, payload)
        self.applied += 1
        return True

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

    async def run(self, stop: asyncio.Event, ready: asyncio.Event | None = None) -> None:
        consumer = AIOKafkaConsumer(
            *self.topics,
            bootstrap_servers=self.bootstrap,
            group_id=self.name,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=200,
        )
        self.kafka = consumer
        try:
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
            while not stop.is_set():
                batches = await consumer.getmany(timeout_ms=500)
                for tp, records in batches.items():
                    for record in records:
                        await self.handle_record(record)
                        # Offset after the database commit: a crash here redelivers, the inbox skips it.
                        try:
                            await consumer.commit({TopicPartition(tp.topic, tp.partition): record.offset + 1})
                        except KafkaError:
                            # A rebalance took the partition away: its new owner gets the message again
                            # and its inbox skips it.
                            log.warning("offset commit failed; the message will be redelivered", exc_info=True)
                            break
        finally:
            await consumer.stop()
