"""Kafka clients from settings, and explicit topic creation at start-up (docs/ARCHITECTURE.md "Events")."""

from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from shared.events import ALL_TOPICS
from shared.settings import ServiceSettings

log = logging.getLogger(__name__)


def make_producer(settings: ServiceSettings) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        acks="all",
        enable_idempotence=settings.kafka_enable_idempotence,
        linger_ms=5,
    )


async def ensure_topics(bootstrap: str, partitions: int, replication: int = 1,
                        topics: tuple[str, ...] = ALL_TOPICS, attempts: int = 30) -> None:
    for attempt in range(attempts):
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        try:
            await admin.start()
            existing = set(await admin.list_topics())
            missing = [NewTopic(t, partitions, replication) for t in topics if t not in existing]
            if missing:
                try:
                    await admin.create_topics(missing)
                except TopicAlreadyExistsError:
                    pass
            return
        except Exception:
            if attempt == attempts - 1:
                raise
            log.warning("broker not ready for topic creation; retrying")
            await asyncio.sleep(1)
        finally:
            await admin.close()
