"""Starting a worker process: build the processor once, serve metrics, run RQ's work loop.

The worker class is RQ's ``SimpleWorker`` (jobs run in the worker process): forking per job costs more than
processing a whole batch, and in-process jobs keep the validators compiled and the metrics in one registry.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, start_http_server
from redis import Redis
from rq import Queue, SimpleWorker

from greenq.contract import QUEUE_NAME, SERIALIZER
from greenq.logs import fields
from greenq.redis_conn import connect
from greenq.settings import WorkerSettings
from workers import jobs
from workers.context import HandlerContext
from workers.metrics import RedisStateCollector, WorkerMetrics
from workers.processing import Processor
from workers.router import load_router
from workers.validation import NotificationValidator

log = logging.getLogger("greenq.worker")


@dataclass(frozen=True)
class WorkerRuntime:
    """A ready-to-run worker and the registry its metrics live in."""

    worker: SimpleWorker
    processor: Processor
    registry: CollectorRegistry
    redis: Redis


def build_runtime(
    settings: WorkerSettings, connection: Redis | None = None, name: str | None = None
) -> WorkerRuntime:
    """Compile schemas, load the router, bind the processor for this process's jobs."""
    redis = (
        connection if connection is not None else connect(settings.redis_url, settings.redis_socket_timeout)
    )
    validator = NotificationValidator()
    registry = CollectorRegistry()
    metrics = WorkerMetrics.create(registry, validator.known_webhook_types)
    registry.register(RedisStateCollector(redis))
    context = HandlerContext(redis=redis, settings=settings, log=logging.getLogger("greenq.handlers"))
    processor = Processor(settings, context, load_router(settings.router), validator, metrics)
    jobs.bind(processor)
    queue = Queue(QUEUE_NAME, connection=redis, serializer=SERIALIZER)
    worker = SimpleWorker([queue], connection=redis, serializer=SERIALIZER, name=name)
    return WorkerRuntime(worker=worker, processor=processor, registry=registry, redis=redis)


def run_worker(settings: WorkerSettings, burst: bool = False, name: str | None = None) -> bool:
    """Run until stopped (or, in burst mode, until the queue is empty). True if any job ran."""
    runtime = build_runtime(settings, name=name)
    if settings.metrics_port:
        start_http_server(settings.metrics_port, addr=settings.metrics_host, registry=runtime.registry)
    log.info(
        "worker starting",
        extra=fields(
            worker=runtime.worker.name,
            queue=QUEUE_NAME,
            router=settings.router,
            metrics=f"{settings.metrics_host}:{settings.metrics_port}" if settings.metrics_port else None,
        ),
    )
    return bool(
        runtime.worker.work(
            burst=burst, logging_level=settings.log_level, with_scheduler=settings.with_scheduler
        )
    )
