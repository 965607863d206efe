"""Kafka clients from settings, and explicit topic creation at start-up (docs/ARCHITECTURE.md "Events").

Topics are created only here, with the configured partition count; no client of ours ever lets the broker
create a topic by asking for its metadata (a broker's default partition count would split keys differently
from the topics' consumers: issue #11). A topic found with another partition count stops the service.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any

import aiokafka.admin.client
import aiokafka.client
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from aiokafka.protocol.metadata import MetadataRequest

from shared.events import ALL_TOPICS
from shared.settings import ServiceSettings

log = logging.getLogger(__name__)

UNKNOWN_TOPIC_OR_PARTITION = 3


class _NoAutoCreateMetadataRequest(MetadataRequest):
    """Metadata requests that never ask the broker to create the topics they name (aiokafka asks by default)."""

    def __init__(self, topics: list[str] | None = None, allow_auto_topic_creation: bool | None = None) -> None:
        super().__init__(topics, allow_auto_topic_creation=False)


def forbid_topic_auto_creation() -> None:
    """Every aiokafka client of this process (producers, consumers) stops asking for auto-creation."""
    aiokafka.client.MetadataRequest = _NoAutoCreateMetadataRequest
    aiokafka.admin.client.MetadataRequest = _NoAutoCreateMetadataRequest


forbid_topic_auto_creation()


def cancelled_from_inside(stop: asyncio.Event | None = None) -> bool:
    """True when a CancelledError reaching the current task was not a request to stop it: aiokafka cancels
    its own futures when a broker connection dies (a client's ``close()`` then raises CancelledError), and a
    loop that re-raised it would end silently. Our own stop sets ``stop`` or cancels the task."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() == 0 and not (stop is not None and stop.is_set())


async def bounded(work: Awaitable[Any], what: str, limit: float = 5.0) -> bool:
    """Run a Kafka client's ``close()``/``stop()`` (or another call) for at most ``limit`` seconds in its own
    task. aiokafka's close paths swallow a cancellation (``suppress(CancelledError)`` around their own tasks)
    and can raise one of their own, so ``asyncio.wait_for`` can neither bound nor safely await them: here an
    error, a CancelledError from inside, or a hang is logged and left behind, never raised. Returns True when
    the work finished cleanly. Only the caller's own cancellation propagates."""
    task = asyncio.ensure_future(work)
    done, _ = await asyncio.wait({task}, timeout=limit)
    if task not in done:
        task.cancel()
        log.warning("%s did not finish in %.0f s; left behind", what, limit)
        return False
    if task.cancelled():
        log.warning("%s was cancelled from inside the Kafka client", what)
        return False
    if task.exception() is not None:
        log.warning("%s failed: %r", what, task.exception())
        return False
    return True


class TopicMismatch(RuntimeError):
    """A topic exists with another partition count than configured: keys would hash to other partitions."""


def make_producer(settings: ServiceSettings) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        acks="all",
        enable_idempotence=settings.kafka_enable_idempotence,
        linger_ms=5,
    )


def partition_counts(described: list[dict[str, Any]]) -> dict[str, int]:
    """Topic -> partition count, from a metadata answer; a topic the broker does not know is left out."""
    return {t["topic"]: len(t["partitions"]) for t in described
            if t.get("error_code", 0) != UNKNOWN_TOPIC_OR_PARTITION and t["partitions"]}


async def check_and_create(admin: AIOKafkaAdminClient, partitions: int, replication: int,
                           topics: tuple[str, ...]) -> list[str]:
    """Create the missing topics; refuse (TopicMismatch) a topic with another partition count. Returns the
    topics created (a broker that lost them lost their messages too)."""
    counts = partition_counts(await admin.describe_topics(list(topics)))
    wrong = {t: n for t, n in counts.items() if n != partitions}
    if wrong:
        raise TopicMismatch(
            f"topics {wrong} have another partition count than the configured {partitions}: keys would reach "
            "partitions no consumer reads. Recreate them with the configured count or change KAFKA_PARTITIONS.")
    missing = [t for t in topics if t not in counts]
    if missing:
        try:
            await admin.create_topics([NewTopic(t, partitions, replication) for t in missing])
        except TopicAlreadyExistsError:
            pass
        # Another service may have created them at the same moment, with its own count: check again.
        counts = partition_counts(await admin.describe_topics(list(missing)))
        wrong = {t: n for t, n in counts.items() if n != partitions}
        if wrong:
            raise TopicMismatch(f"topics {wrong} were created with another partition count than {partitions}")
        log.warning("created topics", extra={"fields": {"topics": missing, "partitions": partitions}})
    return missing


async def ensure_topics(bootstrap: str, partitions: int, replication: int = 1,
                        topics: tuple[str, ...] = ALL_TOPICS, attempts: int = 30) -> list[str]:
    for attempt in range(attempts):
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        try:
            await admin.start()
            return await check_and_create(admin, partitions, replication, topics)
        except TopicMismatch:
            raise
        except Exception:
            if attempt == attempts - 1:
                raise
            log.warning("broker not ready for topic creation; retrying")
            await asyncio.sleep(1)
        finally:
            await admin.close()
    return []
