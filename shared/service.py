"""What every service is made of: one FastAPI app, its database, its outbox relay and its consumer.

A service module declares a :class:`ServiceSpec`; :func:`create_app` wires health, readiness, metrics,
problem+json errors, the correlation-id middleware and, when ``run_workers`` is true, the Kafka side
(topics, producer, relay, consumer) into the app's lifespan. Service tests build the same app with
``run_workers=False`` and drive it over ASGI against real PostgreSQL.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, FastAPI, Response
from fastapi.responses import JSONResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from pydantic import BaseModel
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared import guards
from shared.apidocs import install_api_docs
from shared.broker_watch import BrokerWatch
from shared.db import Database
from shared.errors import install_error_handlers
from shared.events import ALL_TOPICS
from shared.kafka import TopicMismatch, ensure_topics, make_producer
from shared.messaging import Consumer, Handler, MessagingTables, OutboxRelay
from shared.observability import correlation_id_var
from shared.ops_metrics import MetricSource, OpsMetrics
from shared.schemas import problem_responses
from shared.settings import ServiceSettings

log = logging.getLogger(__name__)


@dataclass
class ServiceSpec:
    name: str
    title: str
    settings: ServiceSettings
    tables: MessagingTables
    routers: list[APIRouter]
    handlers: Mapping[str, Handler] = field(default_factory=dict)
    consumes: list[str] = field(default_factory=list)
    # Extra start-up work that needs the database (enrollment creates the admin account).
    on_start: Callable[[FastAPI], Awaitable[None]] | None = None
    # Periodic sweepers (timers are rows): each is called every ``sweep_interval`` seconds.
    sweepers: list[Callable[[FastAPI], Awaitable[Any]]] = field(default_factory=list)
    sweep_interval: float = 30.0
    # Gauges this service computes from its own database at scrape time (shared/ops_metrics.py).
    metric_sources: list[MetricSource] = field(default_factory=list)
    # Routes whose bodies may exceed settings.max_body_bytes: path template -> the setting holding the limit
    # (e.g. "max_roster_bytes"), or a (setting, extra bytes) pair for a multipart envelope around a file.
    body_limits: dict[str, str | tuple[str, int]] = field(default_factory=dict)


class HealthOut(BaseModel):
    status: Literal["ok"]
    service: str


class ReadyOut(BaseModel):
    status: Literal["ready", "not ready"]
    checks: dict[str, str]  # database / kafka: "ok", "not started" or "down: <error>"


class Metrics:
    def __init__(self, service: str) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("http_requests_total", "HTTP requests", ["method", "route", "status"],
                                registry=self.registry)
        self.latency = Histogram("http_request_seconds", "HTTP request latency", ["route"],
                                 registry=self.registry)
        self.outbox_published = Gauge("outbox_published_total", "events published by this process",
                                      registry=self.registry)
        self.events_applied = Gauge("events_applied_total", "events applied by this process's consumer",
                                    registry=self.registry)
        self.duplicates = Gauge("events_duplicates_skipped_total", "redelivered events the inbox skipped",
                                registry=self.registry)
        self.dead_lettered = Gauge("events_dead_lettered_total", "messages sent to the dead-letter topic",
                                   registry=self.registry)
        self.parked = Gauge("events_parked_total", "events parked until their reference is known",
                            registry=self.registry)
        self.broker_losses = Gauge("broker_data_losses_total", "times the broker was found to have lost our events",
                                   registry=self.registry)
        self.info = Gauge("service_info", "service identity", ["service"], registry=self.registry)
        self.info.labels(service=service).set(1)


class Correlation:
    """X-Correlation-ID in and out (the log's ``correlation_id`` while the request runs) and the request metrics.

    A plain ASGI middleware (issue 15): Starlette's ``@app.middleware("http")`` (BaseHTTPMiddleware) runs each
    request in a task of its own and passes the response through a memory stream, a cost on every request."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cid = (Headers(scope=scope).get("x-correlation-id") or str(uuid.uuid4()))[:100]
        token = correlation_id_var.set(cid)
        started = time.perf_counter()
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)["X-Correlation-ID"] = cid
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            correlation_id_var.reset(token)
        path = getattr(scope.get("route"), "path", "unmatched")
        self.metrics.requests.labels(scope["method"], path, str(status)).inc()
        self.metrics.latency.labels(path).observe(time.perf_counter() - started)


def create_app(spec: ServiceSpec, db: Database, *, run_workers: bool = True) -> FastAPI:
    settings = spec.settings
    metrics = Metrics(spec.name)
    ops_metrics = OpsMetrics(metrics.registry, spec.metric_sources)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        stop = asyncio.Event()
        tasks: list[asyncio.Task[None]] = []
        producer = None
        if spec.on_start is not None:
            await spec.on_start(app)
        if run_workers:
            await ensure_topics(settings.kafka_bootstrap, settings.kafka_partitions, settings.kafka_replication)
            producer = make_producer(settings)
            await producer.start()
            app.state.producer = producer
            watch = BrokerWatch(
                db=db, tables=spec.tables, bootstrap=settings.kafka_bootstrap, partitions=settings.kafka_partitions,
                replication=settings.kafka_replication, interval=settings.broker_watch_interval_ms / 1000,
                own_topics=tuple(t for t in ALL_TOPICS if t == f"{spec.name}.events"))
            app.state.broker_watch = watch
            relay = OutboxRelay(db, spec.tables, producer, batch_size=settings.relay_batch_size,
                                interval=settings.relay_interval_ms / 1000, on_regression=watch.hint.set)
            app.state.relay = relay
            tasks.append(asyncio.create_task(relay.run(stop), name=f"{spec.name}-relay"))
            if spec.handlers:
                consumer = Consumer(
                    name=spec.name, db=db, tables=spec.tables, handlers=spec.handlers, topics=spec.consumes,
                    bootstrap=settings.kafka_bootstrap, producer=producer,
                    fault_point=settings.fault_point if settings.local_stack else "",
                )
                app.state.consumer = consumer
                watch.consumer = consumer
                tasks.append(asyncio.create_task(consumer.run(stop), name=f"{spec.name}-consumer"))
            tasks.append(asyncio.create_task(_watch(watch, stop), name=f"{spec.name}-broker-watch"))
            for sweeper in spec.sweepers:
                tasks.append(asyncio.create_task(_sweep(app, sweeper, stop, spec.sweep_interval)))
        log.info("service started", extra={"fields": {"port": settings.port, "workers": run_workers}})
        try:
            yield
        finally:
            stop.set()
            for task in tasks:
                task.cancel()
            for task in tasks:
                with suppress(asyncio.CancelledError, Exception):
                    await task
            if producer is not None:
                await producer.stop()
            await db.dispose()

    # /docs loads nothing from a CDN (shared/apidocs.py): FastAPI's own /docs and /redoc are switched off.
    app = FastAPI(title=spec.title, version="1.0.0", lifespan=lifespan, docs_url=None, redoc_url=None)
    install_api_docs(app, spec.title)
    app.state.settings = settings
    app.state.db = db
    app.state.spec = spec
    app.state.metrics = metrics
    app.state.producer = None
    install_error_handlers(app)
    guards.install(app, default_limit=settings.max_body_bytes, max_depth=settings.max_json_depth,
                   route_limits={path: guards.setting_limit(settings, name) for path, name in spec.body_limits.items()})

    app.add_middleware(Correlation, metrics=metrics)

    @app.get("/healthz", tags=["ops"], response_model=HealthOut)
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": spec.name}

    @app.get("/readyz", tags=["ops"], response_model=ReadyOut,
             responses={503: {"model": ReadyOut, "description": "数据库或消息代理不可用（checks 逐项说明）"}})
    async def readyz() -> JSONResponse:
        checks: dict[str, str] = {}
        try:
            await asyncio.wait_for(db.ping(), timeout=3)
            checks["database"] = "ok"
        except Exception as exc:
            checks["database"] = f"down: {type(exc).__name__}"
        producer = app.state.producer
        if producer is None:
            checks["kafka"] = "not started"
        else:
            try:
                await asyncio.wait_for(producer.client.fetch_all_metadata(), timeout=3)
                checks["kafka"] = "ok"
            except Exception as exc:
                checks["kafka"] = f"down: {type(exc).__name__}"
        ready = all(v == "ok" for v in checks.values())
        return JSONResponse({"status": "ready" if ready else "not ready", "checks": checks},
                            status_code=200 if ready else 503)

    @app.get("/metrics", tags=["ops"], response_class=Response,
             responses={200: {"description": "Prometheus text exposition format",
                              "content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}}})
    async def metrics_endpoint() -> Response:
        relay = getattr(app.state, "relay", None)
        consumer = getattr(app.state, "consumer", None)
        if relay is not None:
            metrics.outbox_published.set(relay.published)
        if consumer is not None:
            metrics.events_applied.set(consumer.applied)
            metrics.dead_lettered.set(consumer.dead_lettered)
            metrics.duplicates.set(consumer.duplicates)
            metrics.parked.set(consumer.parked)
        watch = getattr(app.state, "broker_watch", None)
        if watch is not None:
            metrics.broker_losses.set(watch.losses)
        await ops_metrics.refresh(app)
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    for router in spec.routers:
        # Every API route may answer 401 (no or a stale token) and 422 (a field refused): declared once here.
        app.include_router(router, responses=problem_responses(401, 422))
    return app


def build_app(spec: ServiceSpec, *, run_workers: bool = True) -> FastAPI:
    return create_app(spec, Database(spec.settings.database_url, spec.settings.db_pool_size), run_workers=run_workers)


async def _watch(watch: BrokerWatch, stop: asyncio.Event) -> None:
    try:
        await watch.run(stop)
    except TopicMismatch:
        # Loudly: a topic with another partition count would send keys where no consumer reads them.
        log.critical("stopping: a topic has another partition count than configured")
        os.kill(os.getpid(), signal.SIGTERM)


async def _sweep(app: FastAPI, sweeper: Callable[[FastAPI], Awaitable[Any]], stop: asyncio.Event,
                 interval: float) -> None:
    while not stop.is_set():
        try:
            await sweeper(app)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("sweeper failed")
        with suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)


def serve(spec: ServiceSpec, migrations: Path) -> None:
    """Entry point of ``python -m services.<name>``: migrate, then serve HTTP with the workers."""
    import uvicorn

    from shared.migrate import upgrade
    from shared.observability import configure_logging

    settings = spec.settings
    configure_logging(spec.name, settings.log_level, settings.log_json)
    if sys.argv[1:2] == ["replay"]:
        from shared.broker_watch import replay_command

        raise SystemExit(replay_command(spec.name, spec.tables, settings, migrations, sys.argv[2:]))
    upgrade(migrations, settings.database_url)
    app = build_app(spec)
    uvicorn.run(app, host=settings.host, port=settings.port, log_config=None, access_log=False,
                timeout_graceful_shutdown=5)
