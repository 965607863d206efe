"""Operational gauges read at scrape time: outbox backlog, consumer lag per topic, and each service's own
figures (claims per status, roster rows imported), for Grafana (deploy/grafana/) and the ops dashboard.

Counters kept in process memory (``events_applied_total`` ...) live in shared/service.py. What is here is
asked of the service's own database or of the broker when ``/metrics`` is scraped, each with a short
timeout: a slow database or broker leaves the previous values and counts a failed refresh, never a 5xx.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

if TYPE_CHECKING:
    from fastapi import FastAPI

log = logging.getLogger(__name__)

REFRESH_TIMEOUT = 3.0

# A service's own gauge: a name, help text, label names and an async query giving {label values: value}.
GaugeQuery = Callable[[AsyncSession], Awaitable[dict[tuple[str, ...], float]]]


@dataclass(frozen=True)
class MetricSource:
    name: str
    help: str
    labels: tuple[str, ...]
    query: GaugeQuery


class OpsMetrics:
    def __init__(self, registry: CollectorRegistry, sources: list[MetricSource] | None = None) -> None:
        self.outbox_backlog = Gauge("outbox_backlog", "outbox rows not yet published, by topic", ["topic"],
                                    registry=registry)
        self.outbox_oldest = Gauge("outbox_oldest_unpublished_seconds",
                                   "age of the oldest unpublished outbox row (0 when none)", registry=registry)
        self.consumer_lag = Gauge("consumer_lag", "messages not yet consumed on this process's partitions, by topic",
                                  ["topic"], registry=registry)
        self.failures = Counter("ops_metrics_refresh_failures_total", "scrape-time refreshes that failed",
                                ["part"], registry=registry)
        for part in ("outbox", "consumer_lag", "service"):
            self.failures.labels(part)  # exported at 0 from the start, so rate() and increase() see the first one
        self.sources = list(sources or [])
        self.gauges = {s.name: Gauge(s.name, s.help, list(s.labels), registry=registry) for s in self.sources}

    async def refresh(self, app: FastAPI) -> None:
        parts: list[tuple[str, Awaitable[None]]] = [("outbox", self._outbox(app))]
        consumer = getattr(app.state, "consumer", None)
        if consumer is not None and getattr(consumer, "kafka", None) is not None:
            parts.append(("consumer_lag", self._lag(consumer.kafka, consumer.topics)))
        if self.sources:
            parts.append(("service", self._sources(app)))
        for part, job in parts:
            try:
                await asyncio.wait_for(job, REFRESH_TIMEOUT)
            except asyncio.CancelledError:
                raise
            except Exception:
                self.failures.labels(part).inc()
                log.warning("metrics refresh failed", extra={"fields": {"part": part}}, exc_info=True)

    async def _outbox(self, app: FastAPI) -> None:
        outbox = app.state.spec.tables.outbox
        async with app.state.db.transaction() as session:
            rows = (await session.execute(
                select(outbox.c.topic, func.count(), func.min(outbox.c.created_at))
                .where(outbox.c.published_at.is_(None)).group_by(outbox.c.topic))).all()
            now = (await session.execute(select(func.now()))).scalar_one()
        seen = set()
        oldest = 0.0
        for topic, count, first in rows:
            self.outbox_backlog.labels(topic).set(count)
            seen.add(topic)
            oldest = max(oldest, (now - first).total_seconds())
        for labels in list(self.outbox_backlog._metrics):
            if labels[0] not in seen:
                self.outbox_backlog.labels(*labels).set(0)
        self.outbox_oldest.set(oldest)

    async def _lag(self, kafka: Any, topics: list[str]) -> None:
        partitions = list(kafka.assignment())
        lag: dict[str, int] = dict.fromkeys(topics, 0)
        if partitions:
            ends = await kafka.end_offsets(partitions)
            for tp in partitions:
                committed = await kafka.committed(tp)
                lag[tp.topic] = lag.get(tp.topic, 0) + max(0, ends.get(tp, 0) - (committed or 0))
        for topic, value in lag.items():
            self.consumer_lag.labels(topic).set(value)

    async def _sources(self, app: FastAPI) -> None:
        async with app.state.db.transaction() as session:
            for source in self.sources:
                values = await source.query(session)
                gauge = self.gauges[source.name]
                for labels in list(gauge._metrics) if source.labels else []:
                    if labels not in values:
                        gauge.labels(*labels).set(0)
                for labels, value in values.items():
                    (gauge.labels(*labels) if source.labels else gauge).set(value)
