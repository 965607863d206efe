"""No event lost to a broker that lost its data (issue #11, item 1).

The relay marks an outbox row published when the broker acks it; a broker that then loses its data (Tansu's
memory storage after a restart, a Kafka cluster rebuilt, a topic deleted) has none of it. The watch notices,
every ``broker_watch_interval_ms`` and at once when the relay sees an offset go backwards:

- the broker's cluster id changed (``describe_cluster``), or
- one of our topics is missing (it is recreated with the configured partitions; a topic with another
  partition count stops the service: :class:`shared.kafka.TopicMismatch`), or
- a partition of a topic this service publishes ends below the highest offset the broker acked us there.

Then, in one transaction, every outbox row not yet confirmed goes back to unpublished (the relay publishes it
again) and the service's broker epoch is raised; the consumer reads each of its partitions again from the
beginning once in the new epoch (the inbox skips what was applied). A row is *confirmed* once every consumer group reading its topic has
committed past its offset on the broker it was published to (``CONSUMER_GROUPS``): those rows are never
published again, so a replay is bounded by what consumers had not yet read, not the whole history.

The watch must outlive every broker: a check runs in its own task for a bounded time, clients are closed
with ``shared.kafka.bounded``, and a CancelledError that aiokafka raises from inside (its close paths do, when
a connection died) is an error to retry, never a stop. (The chaos round lost deliveries to this: the watch took
such a CancelledError for a stop, ended silently, and later broker losses went unnoticed.)

``replay_since`` is the operator's command (``python -m services.<name> replay --since <iso time>``): every
row written since then is published again, after the topics are checked.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import OffsetOutOfRangeError
from aiokafka.structs import TopicPartition
from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import Database
from shared.events import ALL_TOPICS, TOPIC_CLAIMS, TOPIC_ENROLLMENT, TOPIC_PAYMENTS
from shared.kafka import TopicMismatch, bounded, cancelled_from_inside, check_and_create, ensure_topics
from shared.messaging import BROKER_ROW, Consumer, MessagingTables, current_epoch
from shared.settings import ServiceSettings

log = logging.getLogger(__name__)

# Which consumer groups (the services' names) read each topic: a row is confirmed when all have read it.
CONSUMER_GROUPS: dict[str, tuple[str, ...]] = {
    TOPIC_ENROLLMENT: ("claims", "payments", "notifications"),
    TOPIC_CLAIMS: ("payments", "notifications", "enrollment"),
    TOPIC_PAYMENTS: ("claims", "notifications"),
}


# Rows confirmed this recently are published again too when a broker is lost. A confirmation is read from the
# consumer groups' committed offsets, and in the seconds between a broker swap and its consumer's watch
# noticing it, a consumer may commit on the new broker positions of the old one's numbering (past records it
# never read); once it notices, it reads every partition again from its beginning and commits that
# (Consumer._rewind_stale), but a confirmation taken in between would stand. The inboxes skip what was
# applied, so the cost of the window is a bounded re-send.
RECONFIRM_WINDOW = timedelta(minutes=10)


async def broker_lost(session: AsyncSession, tables: MessagingTables, cluster_id: str | None, reason: str,
                      window: timedelta = RECONFIRM_WINDOW) -> int:
    """Publish again every row no consumer group confirmed (or confirmed within ``window``), in a new epoch;
    returns how many rows."""
    outbox, broker = tables.outbox, tables.broker
    # Outbox rows first (the relay locks rows, then broker_partitions: the same order, no deadlock).
    reset = (await session.execute(update(outbox).where(
        outbox.c.published_at.is_not(None),
        or_(outbox.c.confirmed_at.is_(None), outbox.c.confirmed_at >= func.now() - window),
    ).values(published_at=None, confirmed_at=None)))
    epoch = await current_epoch(session, tables) + 1
    await session.execute(delete(broker).where(broker.c.partition >= 0))
    stmt = insert(broker).values(topic=BROKER_ROW[0], partition=BROKER_ROW[1], max_offset=epoch,
                                 cluster_id=cluster_id)
    await session.execute(stmt.on_conflict_do_update(index_elements=["topic", "partition"], set_={
        "max_offset": epoch, "cluster_id": cluster_id, "updated_at": func.now()}))
    count = int(reset.rowcount or 0)  # type: ignore[attr-defined]
    log.warning("the broker lost our events (%s): publishing again what consumers had not confirmed", reason,
                extra={"fields": {"reason": reason, "rows": count, "epoch": epoch}})
    return count


class BrokerWatch:
    def __init__(self, *, db: Database, tables: MessagingTables, bootstrap: str, partitions: int,
                 replication: int, own_topics: tuple[str, ...], consumer: Consumer | None = None,
                 interval: float = 2.0, confirm_every: int = 3, reconfirm_window: timedelta = RECONFIRM_WINDOW,
                 consumer_groups: dict[str, tuple[str, ...]] | None = None) -> None:
        self.consumer_groups = CONSUMER_GROUPS if consumer_groups is None else consumer_groups
        self.db, self.tables, self.bootstrap = db, tables, bootstrap
        self.partitions, self.replication = partitions, replication
        self.own_topics, self.consumer = own_topics, consumer
        self.interval, self.confirm_every = interval, confirm_every
        self.reconfirm_window = reconfirm_window
        self.checks = 0
        self.losses = 0
        self.republished = 0
        self.hint = asyncio.Event()  # the relay saw an offset go backwards: check now
        self._admin: AIOKafkaAdminClient | None = None
        self._offsets: AIOKafkaConsumer | None = None

    async def _clients(self) -> tuple[AIOKafkaAdminClient, AIOKafkaConsumer]:
        if self._admin is None or self._offsets is None:
            await self.close()
            admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=5000)
            await admin.start()
            offsets = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False,
                                       request_timeout_ms=5000, auto_offset_reset="none")
            await offsets.start()
            self._admin, self._offsets = admin, offsets
        return self._admin, self._offsets

    async def close(self) -> None:
        # Never raises: a client's close that raised CancelledError once ended the watch for good (shared.kafka.bounded).
        admin, offsets, self._admin, self._offsets = self._admin, self._offsets, None, None
        if admin is not None:
            await bounded(admin.close(), "the broker watch's admin client close")
        if offsets is not None:
            await bounded(offsets.stop(), "the broker watch's offsets client stop")

    async def check(self) -> bool:
        """One look at the broker; True when it had lost our data (and the replay was started)."""
        admin, offsets = await self._clients()
        self.checks += 1
        created = await check_and_create(admin, self.partitions, self.replication, ALL_TOPICS)
        own = [TopicPartition(t, p) for t in self.own_topics for p in range(self.partitions)]
        ends = await offsets.end_offsets(own) if own else {}
        broker = self.tables.broker
        async with self.db.transaction() as session:
            acked = {(r.topic, r.partition): r.max_offset for r in (await session.execute(
                select(broker.c.topic, broker.c.partition, broker.c.max_offset).where(broker.c.partition >= 0)))}
        # A partition that ends at or below the last offset the broker acked us is suspicious (Tansu reports
        # the end of a partition as the start of its last record batch + 1); the record is then fetched.
        suspicious = {tp: acked[(tp.topic, tp.partition)] for tp, end in ends.items()
                      if (tp.topic, tp.partition) in acked and end <= acked[(tp.topic, tp.partition)]}
        missing_records = await self._absent(offsets, suspicious) if suspicious else []
        # Asked after the topics and offsets: a broker replaced during this check is recorded under its own id
        # (asked first, the old broker's id was recorded with the new broker's loss, counted twice).
        cluster: dict[str, Any] = await admin.describe_cluster()
        cluster_id = str(cluster.get("cluster_id") or "")
        async with self.db.transaction() as session:
            known = {(r.topic, r.partition): r for r in (await session.execute(
                select(broker).with_for_update())).all()}
            mine = known.get(BROKER_ROW)
            reasons = []
            if mine is not None and mine.cluster_id and mine.cluster_id != cluster_id:
                reasons.append(f"cluster id {mine.cluster_id} -> {cluster_id}")
            if created:
                reasons.append(f"topics missing: {', '.join(created)}")
            if mine is None and (await session.execute(select(self.tables.outbox.c.seq).where(
                    self.tables.outbox.c.published_at.is_not(None),
                    self.tables.outbox.c.confirmed_at.is_(None)).limit(1))).first() is not None:
                reasons.append("no record of the broker these rows were published to")
            reasons.extend(f"{tp.topic}[{tp.partition}] has no record at offset {offset}, which it acked"
                           for tp, offset in missing_records
                           if known.get((tp.topic, tp.partition)) is not None
                           and known[(tp.topic, tp.partition)].max_offset >= offset)
            if reasons:
                self.republished += await broker_lost(session, self.tables, cluster_id, "; ".join(reasons),
                                                      self.reconfirm_window)
                self.losses += 1
                if self.consumer is not None:
                    self.consumer.reset_requested = True
                return True
            if mine is None or mine.cluster_id != cluster_id:
                stmt = insert(broker).values(topic=BROKER_ROW[0], partition=BROKER_ROW[1],
                                             max_offset=mine.max_offset if mine else 0, cluster_id=cluster_id)
                await session.execute(stmt.on_conflict_do_update(index_elements=["topic", "partition"], set_={
                    "cluster_id": cluster_id, "updated_at": func.now()}))
        if self.checks % self.confirm_every == 0:
            await self.confirm(admin, cluster_id)
        return False

    async def _absent(self, reader: AIOKafkaConsumer, wanted: dict[TopicPartition, int],
                      within: float = 3.0) -> list[tuple[TopicPartition, int]]:
        """The partitions that do not hold the record at the offset the broker acked us."""
        reader.assign(list(wanted))
        for tp, offset in wanted.items():
            reader.seek(tp, offset)
        found: set[TopicPartition] = set()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while len(found) < len(wanted) and loop.time() < deadline:
            try:
                batches = await reader.getmany(*[tp for tp in wanted if tp not in found], timeout_ms=500)
            except OffsetOutOfRangeError as exc:
                return [(tp, wanted[tp]) for tp in exc.args[0]] if exc.args and isinstance(exc.args[0], dict) \
                    else [(tp, offset) for tp, offset in wanted.items() if tp not in found]
            for tp, records in batches.items():
                if records:
                    found.add(tp)
        return [(tp, offset) for tp, offset in wanted.items() if tp not in found]

    async def confirm(self, admin: AIOKafkaAdminClient, cluster_id: str) -> int:
        """Mark the rows every consumer group has committed past as confirmed (never published again)."""
        confirmed = 0
        outbox = self.tables.outbox
        for topic in self.own_topics:
            groups = self.consumer_groups.get(topic, ())
            if not groups:
                continue
            tps = [TopicPartition(topic, p) for p in range(self.partitions)]
            lowest: dict[TopicPartition, int] = {}
            for group in groups:
                committed = await admin.list_consumer_group_offsets(group, partitions=tps)
                if str((await admin.describe_cluster()).get("cluster_id") or "") != cluster_id:
                    return confirmed  # the broker changed under us: its offsets say nothing of our rows
                for tp in tps:
                    meta = committed.get(tp)
                    committed_offset = meta.offset if meta is not None and meta.offset >= 0 else 0
                    lowest[tp] = min(lowest.get(tp, committed_offset), committed_offset)
            async with self.db.transaction() as session:
                epoch = await current_epoch(session, self.tables)
                for tp, offset in lowest.items():
                    if offset <= 0:
                        continue
                    done = await session.execute(update(outbox).where(and_(
                        outbox.c.topic == topic, outbox.c.partition == tp.partition, outbox.c.offset < offset,
                        outbox.c.published_epoch == epoch, outbox.c.published_at.is_not(None),
                        outbox.c.confirmed_at.is_(None))).values(confirmed_at=func.now()))
                    confirmed += int(done.rowcount or 0)  # type: ignore[attr-defined]
        return confirmed

    async def _bounded_check(self, limit: float) -> None:
        """One check in its own task, for at most ``limit`` seconds: a client talking to a broker that died
        mid-request must not stall the watch, and a check stuck in a client that swallows its cancellation
        (which ``asyncio.wait_for`` would wait for forever) is left behind with its clients."""
        task = asyncio.create_task(self.check())
        done, _ = await asyncio.wait({task}, timeout=limit)
        if task not in done:
            task.cancel()
            self._admin = self._offsets = None  # owned by the stuck check now; new clients for the next one
            raise TimeoutError(f"the broker check took more than {limit:.0f} s")
        if task.cancelled():
            raise RuntimeError("the broker check was cancelled from inside the Kafka client")
        task.result()

    async def run(self, stop: asyncio.Event) -> None:
        try:
            while not stop.is_set():
                try:
                    await self._bounded_check(max(15.0, self.interval * 5))
                except asyncio.CancelledError:
                    if not cancelled_from_inside(stop):
                        raise
                    # Not a stop: the watch must outlive every broker, or the next loss goes unnoticed.
                    log.warning("broker watch: a Kafka client raised CancelledError; retrying")
                    await self.close()
                except TopicMismatch:
                    log.critical("refusing to run against topics with another partition count", exc_info=True)
                    raise
                except Exception:
                    log.warning("broker watch could not check the broker; retrying", exc_info=True)
                    await self.close()
                self.hint.clear()
                with suppress(TimeoutError):
                    await asyncio.wait_for(_first(stop, self.hint), timeout=self.interval)
        finally:
            await self.close()


async def _first(*events: asyncio.Event) -> None:
    waiters = [asyncio.create_task(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()


async def replay_since(db: Database, tables: MessagingTables, bootstrap: str, partitions: int, replication: int,
                       since: datetime) -> int:
    """The operator's replay: topics checked (and recreated), every row written since ``since`` published
    again by the running relay. Consumers' inboxes skip what they applied before."""
    await ensure_topics(bootstrap, partitions, replication)
    outbox = tables.outbox
    async with db.transaction() as session:
        done = await session.execute(update(outbox).where(
            outbox.c.created_at >= since, outbox.c.published_at.is_not(None)).values(published_at=None))
        return int(done.rowcount or 0)  # type: ignore[attr-defined]


def replay_command(name: str, tables: MessagingTables, settings: ServiceSettings, migrations: Path,
                   argv: list[str]) -> int:
    """``python -m services.<name> replay --since 2026-11-23T08:00:00+08:00``"""
    parser = argparse.ArgumentParser(prog=f"python -m services.{name} replay",
                                     description="publish again every event this service wrote since a time")
    parser.add_argument("--since", required=True, type=datetime.fromisoformat,
                        help="ISO time (without a zone: UTC), e.g. 2026-11-23T08:00:00+08:00")
    args = parser.parse_args(argv)
    since: datetime = args.since if args.since.tzinfo else args.since.replace(tzinfo=UTC)

    from shared.migrate import upgrade

    upgrade(migrations, settings.database_url)

    async def go() -> int:
        db = Database(settings.database_url, 2)
        try:
            return await replay_since(db, tables, settings.kafka_bootstrap, settings.kafka_partitions,
                                      settings.kafka_replication, since)
        finally:
            await db.dispose()

    count = asyncio.run(go())
    print(f"{name}: {count} events written since {since.isoformat()} will be published again by the running relay")
    return 0
