"""Starting a worker process: build the processor once, serve metrics, run RQ's work loop.

The worker class builds on RQ's ``SimpleWorker`` (jobs run in the worker process): forking per job costs more
than processing a whole batch, and in-process jobs keep the validators compiled and the metrics in one
registry. ``greenq.workers.rq_worker`` adds the fast recovery of a killed worker's job.
"""

from __future__ import annotations

import gc
import logging
from dataclasses import dataclass, replace

from prometheus_client import CollectorRegistry, start_http_server
from redis import Redis
from redis.exceptions import RedisError

from greenq.core import keys
from greenq.core.contract import SERIALIZER, notification_queue
from greenq.core.logs import fields
from greenq.core.redis_conn import connect
from greenq.core.settings import WorkerSettings
from greenq.workers.drain import PartitionDrain
from greenq.workers.jobs import WorkerContext
from greenq.workers.metrics import RedisStateCollector, WorkerMetrics
from greenq.workers.processing import Processor
from greenq.workers.redis_outage import RedisOutage
from greenq.workers.router import load_router
from greenq.workers.rq_worker import GreenqWorker
from greenq.workers.validation import NotificationValidator

log = logging.getLogger("greenq.worker")


@dataclass(frozen=True)
class WorkerRuntime:
    """A ready-to-run worker, the context it hands its jobs, and the registry its metrics live in."""

    worker: GreenqWorker
    context: WorkerContext
    registry: CollectorRegistry
    redis: Redis

    @property
    def processor(self) -> Processor:
        return self.context.processor


def build_runtime(
    settings: WorkerSettings, connection: Redis | None = None, name: str | None = None
) -> WorkerRuntime:
    """Compile schemas, load the router, build the processor the worker hands to its jobs."""
    redis = connection or connect(settings.require_redis_url(), settings.redis_socket_timeout)
    validator = NotificationValidator()
    registry = CollectorRegistry()
    metrics = WorkerMetrics.create(registry, validator.known_webhook_types)
    registry.register(RedisStateCollector(redis, partition_count=settings.partitions))
    processor = Processor(settings, redis, load_router(settings.router), validator, metrics)
    context = WorkerContext(processor, PartitionDrain(processor, redis, settings.partitions, metrics))
    worker = make_worker(settings, redis, context, name)
    return WorkerRuntime(worker=worker, context=context, registry=registry, redis=redis)


def make_worker(
    settings: WorkerSettings, redis: Redis, context: WorkerContext, name: str | None = None
) -> GreenqWorker:
    """An RQ worker on greenq's queue that runs each job with ``context``."""
    queue = notification_queue(redis)
    return GreenqWorker(
        [queue],
        context=context,
        connection=redis,
        serializer=SERIALIZER,
        name=name,
        abandoned_after=settings.abandoned_job_seconds,
        maintenance_interval=settings.maintenance_interval_seconds,
        dead_letter_retention_days=settings.dead_letter_retention_days,
        # In either mode: a producer may still write partitions (a rolling switch, or a switch back to jobs),
        # and only this pass queues the drain of a partition whose drain job was lost.
        sweep=context.drain.sweep,
    )


def run_worker(settings: WorkerSettings, burst: bool = False, name: str | None = None) -> bool:
    """Run until stopped (or, in burst mode, until the queue is empty). True if any job ran.

    RQ's work loop gives up when Redis disappears or fills up at the wrong moment; this loop then waits
    until Redis takes writes again (:class:`RedisOutage`: capped backoff, a bounded number of log lines)
    and starts a fresh RQ worker, whose maintenance re-queues a job the old one left in ``rq:wip``.
    """
    runtime = build_runtime(settings, name=name)
    gc.freeze()  # modules, schemas, runtime: process-long; full collections skip them (~40 ms a pass)
    if settings.metrics_port:
        start_http_server(settings.metrics_port, addr=settings.metrics_host, registry=runtime.registry)
    log.info(
        "worker starting",
        extra=fields(
            worker=runtime.worker.name,
            queue=keys.QUEUE_NAME,
            router=settings.router,
            metrics=f"{settings.metrics_host}:{settings.metrics_port}" if settings.metrics_port else None,
        ),
    )
    # RQ logs four INFO lines per job; greenq's own records cover each notification, so RQ says less.
    rq_level = "DEBUG" if settings.log_level == "DEBUG" else "WARNING"
    outage = RedisOutage(worker=runtime.worker.name)
    worked = False
    while True:
        error: RedisError | None = None
        try:
            worked |= bool(
                runtime.worker.work(
                    burst=burst, logging_level=rq_level, with_scheduler=settings.with_scheduler
                )
            )
        except RedisError as raised:
            error = raised
        if burst or runtime.worker.stop_requested:
            return worked
        outage.failed(error)
        outage.wait(runtime.redis)
        runtime = replace(runtime, worker=make_worker(settings, runtime.redis, runtime.context))
