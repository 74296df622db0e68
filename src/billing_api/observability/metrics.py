"""Prometheus metrics, served at GET /metrics.

With several uvicorn workers, `billing-api serve` sets PROMETHEUS_MULTIPROC_DIR before the workers start, so the
counters and histograms are summed over every worker (prometheus-client's multiprocess mode); the pool gauges
are the sum over the live workers of what each last saw, and the outbox backlog is read at scrape time.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Protocol

from fastapi import APIRouter, Depends, FastAPI, Header, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.pool import QueuePool

from billing_api.errors import Unauthenticated

REQUESTS = Counter("billing_api_http_requests", "HTTP requests answered", ["method", "route", "status"])
LATENCY = Histogram("billing_api_http_request_duration_seconds", "Time to answer an HTTP request",
                    ["method", "route", "status"])
POOL_CHECKED_OUT = Gauge("billing_api_db_pool_checked_out", "Database connections in use",
                         multiprocess_mode="livesum")
POOL_SIZE = Gauge("billing_api_db_pool_size", "Connections the pool keeps open", multiprocess_mode="livesum")
POOL_OVERFLOW = Gauge("billing_api_db_pool_overflow", "Connections open beyond the pool size",
                      multiprocess_mode="livesum")
STAGE_DURATION = Histogram("billing_api_automation_stage_duration_seconds", "Time to run one nightly automation "
                           "stage of one company", ["stage", "outcome"], buckets=(.05, .1, .25, .5, 1, 2.5, 5, 10,
                                                                                  30, 60, 120, 300, 600))

router = APIRouter()


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    REQUESTS.labels(method, route, str(status)).inc()
    LATENCY.labels(method, route, str(status)).observe(seconds)


def observe_pool(sessionmaker: async_sessionmaker[AsyncSession] | None) -> None:
    engine = sessionmaker.kw.get("bind") if sessionmaker is not None else None
    pool = engine.pool if isinstance(engine, AsyncEngine) else None  # tests bind sessions to one connection
    if not isinstance(pool, QueuePool):
        return
    POOL_CHECKED_OUT.set(pool.checkedout())
    POOL_SIZE.set(pool.size())
    POOL_OVERFLOW.set(max(pool.overflow(), 0))  # QueuePool counts from -size until it is full


@contextmanager
def stage_timer(stage: str) -> Iterator[dict[str, str]]:
    """Times a stage; the caller sets `outcome` (a stage that raises counts as `failed`)."""
    labels = {"outcome": "failed"}
    started = time.perf_counter()
    try:
        yield labels
    finally:
        STAGE_DURATION.labels(stage, labels["outcome"]).observe(time.perf_counter() - started)


class BacklogReader(Protocol):
    async def __call__(self, session: AsyncSession) -> int: ...


def read_outbox_backlog_with(app: FastAPI, reader: BacklogReader) -> None:
    # The outbox is mail's: the app hands its reader in at start, so observability imports no feature package.
    app.state.outbox_backlog = reader


class _Backlog:
    """The outbox backlog, read from the database at scrape time."""

    def __init__(self, queued: int | None) -> None:
        self.queued = queued

    def collect(self) -> Iterator[GaugeMetricFamily]:
        up = GaugeMetricFamily("billing_api_outbox_up", "1 when the outbox backlog could be read")
        up.add_metric([], 0 if self.queued is None else 1)
        yield up
        if self.queued is not None:
            yield GaugeMetricFamily("billing_api_outbox_queued_messages", "Mail messages waiting to be sent",
                                    value=self.queued)


def _registry() -> CollectorRegistry:
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry


async def _check_token(request: Request, authorization: Annotated[str | None, Header()] = None) -> None:
    expected = request.app.state.settings.metrics_token
    if not expected:
        return
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not secrets.compare_digest(token.encode(), expected.encode()):
        raise Unauthenticated("GET /metrics needs the metrics token (BILLING_API_METRICS_TOKEN) as a bearer token.")


@router.get("/metrics", include_in_schema=False, dependencies=[Depends(_check_token)])
async def metrics(request: Request) -> Response:
    sessionmaker = request.app.state.sessionmaker
    observe_pool(sessionmaker)
    try:
        async with sessionmaker() as session:
            queued = await request.app.state.outbox_backlog(session)
    except Exception:  # the database is down: the scrape still answers, saying so (billing_api_outbox_up 0)
        queued = None
    backlog = CollectorRegistry(auto_describe=False)
    backlog.register(_Backlog(queued))
    body = generate_latest(_registry()) + generate_latest(backlog)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
