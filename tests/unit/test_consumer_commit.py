"""After a failed offset commit the consumer seeks back to the first message not committed, so the rest of
the batch is fetched again instead of skipped (issue #11). The Kafka client is a fake here: the control flow
of the batch loop is what is under test (the real broker path is in tests/integration)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from aiokafka.errors import KafkaError
from aiokafka.structs import TopicPartition

from shared.messaging import Consumer

TP = TopicPartition("claims.events", 1)


class FakeClient:
    def __init__(self, stop: asyncio.Event) -> None:
        self.stop = stop
        self.position = 10
        self.end = 13
        self.commits: list[int] = []
        self.seeks: list[int] = []
        self.failed_once = False

    async def start(self) -> None:
        return None

    def assignment(self) -> set[TopicPartition]:
        return set()  # nothing assigned yet: no partition to read again from its beginning (a broker epoch)

    async def getmany(self, timeout_ms: int) -> dict[TopicPartition, list[Any]]:
        if self.position >= self.end:
            self.stop.set()
            return {}
        batch = [SimpleNamespace(topic=TP.topic, partition=TP.partition, offset=o)
                 for o in range(self.position, self.end)]
        self.position = self.end  # a fetch moves the position past the whole batch
        return {TP: batch}

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        if not self.failed_once:
            self.failed_once = True
            raise KafkaError("the coordinator moved")
        self.commits.append(offsets[TP])

    def seek(self, tp: TopicPartition, offset: int) -> None:
        assert tp == TP
        self.seeks.append(offset)
        self.position = offset


async def test_a_failed_commit_seeks_back_and_the_rest_of_the_batch_is_handled() -> None:
    stop = asyncio.Event()
    client = FakeClient(stop)
    consumer = Consumer(name="claims", db=None, tables=None, handlers={}, topics=[TP.topic],  # type: ignore[arg-type]
                        bootstrap="unused", producer=None)  # type: ignore[arg-type]
    handled: list[int] = []

    async def handle(record: Any) -> None:
        handled.append(record.offset)

    async def nothing_parked() -> int:
        return 0

    consumer.handle_record = handle  # type: ignore[method-assign]
    consumer.apply_parked = nothing_parked  # type: ignore[assignment,method-assign]
    await consumer._consume(client, stop, None)  # type: ignore[arg-type]
    assert client.seeks == [11]  # back to the first message after the one whose commit failed
    assert handled == [10, 11, 12]  # none of the batch skipped
    assert client.commits == [12, 13]
