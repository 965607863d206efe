"""The loops that must outlive every broker (the broker watch, the consumer, the relay) survive aiokafka's own
CancelledError, and a client's close can neither hang them nor end them (issue #11).

Found in the chaos round: when a broker died, ``AIOKafkaAdminClient.close()`` raised CancelledError (aiokafka
cancels its own futures when a connection dies); the broker watch took it for a request to stop, ended
without a word, and the service never noticed the next broker losses: the rows it had published to the lost
broker were never published again. The Kafka clients are fakes here: the control flow is under test (the
real broker path is in tests/integration/test_broker_loss.py and the chaos round)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from shared.broker_watch import BrokerWatch
from shared.kafka import bounded, cancelled_from_inside
from shared.messaging import Consumer


async def raises_cancelled() -> None:
    await asyncio.sleep(0)
    raise asyncio.CancelledError


async def swallows_cancellation(release: asyncio.Event) -> None:
    while not release.is_set():  # as aiokafka's close does around its own tasks
        try:
            await release.wait()
        except asyncio.CancelledError:
            continue


async def test_a_close_that_raises_cancelled_error_is_reported_not_raised() -> None:
    assert await bounded(raises_cancelled(), "a close") is False


async def test_a_close_that_swallows_its_cancellation_is_left_behind() -> None:
    release = asyncio.Event()
    assert await bounded(swallows_cancellation(release), "a close", limit=0.2) is False
    release.set()


async def test_a_close_that_finishes_is_awaited() -> None:
    assert await bounded(asyncio.sleep(0), "a close") is True


async def test_the_callers_own_cancellation_still_propagates() -> None:
    task = asyncio.create_task(bounded(asyncio.sleep(30), "a close", limit=60))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_cancelled_error_from_inside_is_told_from_a_stop() -> None:
    stop = asyncio.Event()
    assert cancelled_from_inside(stop)
    stop.set()
    assert not cancelled_from_inside(stop)

    async def cancelled_task() -> bool:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            return cancelled_from_inside(asyncio.Event())
        return True

    task = asyncio.create_task(cancelled_task())
    await asyncio.sleep(0.05)
    task.cancel()
    assert await task is False  # cancelled from outside: a stop


class DyingAdmin:
    """An admin client whose broker died: its close raises CancelledError."""

    closes = 0

    async def close(self) -> None:
        DyingAdmin.closes += 1
        await raises_cancelled()


class Watch(BrokerWatch):
    def __init__(self, stop: asyncio.Event) -> None:
        super().__init__(db=None, tables=None, bootstrap="unused", partitions=3, replication=1,  # type: ignore[arg-type]
                         own_topics=(), interval=0.01)
        self.stop = stop

    async def check(self) -> bool:
        self.checks += 1
        if self.checks >= 4:
            self.stop.set()
            return False
        self._admin = DyingAdmin()  # type: ignore[assignment]
        if self.checks == 2:
            raise asyncio.CancelledError  # a client's call cancelled from inside, not a stop
        raise ConnectionError("the broker died mid-request")


async def test_the_broker_watch_outlives_clients_that_raise_cancelled_error() -> None:
    stop = asyncio.Event()
    watch = Watch(stop)
    DyingAdmin.closes = 0
    await asyncio.wait_for(watch.run(stop), 30)
    assert watch.checks == 4  # it went on checking after each failure
    assert DyingAdmin.closes == 3  # each dead client closed, none of their CancelledErrors ended the watch


async def test_the_broker_watch_still_stops_when_cancelled() -> None:
    stop = asyncio.Event()
    watch = Watch(stop)
    watch.interval = 30
    task = asyncio.create_task(watch.run(stop))
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


class DyingClient:
    """A consumer client whose broker died: getmany and stop raise CancelledError from inside."""

    made = 0

    def __init__(self, stop: asyncio.Event) -> None:
        DyingClient.made += 1
        self.stop_event = stop

    async def start(self) -> None:
        return None

    def assignment(self) -> set[Any]:
        return set()

    async def getmany(self, timeout_ms: int) -> dict[Any, list[Any]]:
        if DyingClient.made >= 3:
            self.stop_event.set()
            return {}
        raise asyncio.CancelledError

    async def stop(self) -> None:
        await raises_cancelled()


async def test_the_consumer_starts_a_new_client_after_a_cancelled_error_from_inside() -> None:
    stop = asyncio.Event()
    consumer = Consumer(name="claims", db=None, tables=None, handlers={}, topics=["claims.events"],  # type: ignore[arg-type]
                        bootstrap="unused", producer=None)  # type: ignore[arg-type]

    async def nothing_parked() -> int:
        return 0

    DyingClient.made = 0
    consumer._client = lambda: DyingClient(stop)  # type: ignore[assignment,method-assign,return-value]
    consumer.apply_parked = nothing_parked  # type: ignore[assignment,method-assign]
    await asyncio.wait_for(consumer.run(stop), 30)
    assert DyingClient.made == 3  # two clients died under it; the consumer went on with a third
