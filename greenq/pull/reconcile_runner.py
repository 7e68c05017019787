"""Running ``greenq reconcile``: one pass over every configured instance, or one pass every N seconds.

Instances are reconciled concurrently, each within its own journal rate limit. A pass prints one JSON line
per instance to stdout. With ``--every``, metrics are served and SIGTERM/SIGINT end the loop between passes.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Sequence
from contextlib import closing

import httpx2
import orjson
from prometheus_client import CollectorRegistry
from redis import Redis
from redis.exceptions import RedisError

from greenq.core.contract import producer_queue
from greenq.core.greenapi.errors import ApiError
from greenq.core.greenapi.process import (
    USER_AGENT,
    configure_api_logging,
    on_stop_signals,
    serving_metrics,
    stopped_within,
)
from greenq.core.logs import fields
from greenq.core.redis_conn import connect
from greenq.core.settings import ReconcileSettings
from greenq.pull.api import GreenApiClient
from greenq.pull.journal import JournalPolicy, JournalReader
from greenq.pull.reconcile import ChatRequest, InstanceReport, ReconcilePolicy, Reconciler
from greenq.pull.reconcile_metrics import ReconcileMetrics

log = logging.getLogger("greenq.reconcile")


def run_reconcile(settings: ReconcileSettings, every: float | None, chat: ChatRequest | None = None) -> int:
    """Reconcile once (exit 1 if any instance failed) or every ``every`` seconds until stopped; with
    ``chat``, one chat's history instead of the journal window."""
    configure_api_logging(settings)
    registry = CollectorRegistry()
    metrics = ReconcileMetrics.create(registry, [instance.name for instance in settings.instances])
    port = settings.reconcile_metrics_port if every is not None else 0
    with (
        serving_metrics(registry, settings.reconcile_metrics_host, port),
        closing(connect(settings.require_redis_url(), settings.redis_socket_timeout)) as redis,
    ):
        failed = asyncio.run(_serve(settings, redis, metrics, every, chat))
    return 1 if failed and every is None else 0


async def _serve(
    settings: ReconcileSettings,
    redis: Redis,
    metrics: ReconcileMetrics,
    every: float | None,
    chat: ChatRequest | None,
) -> bool:
    """Passes until done (one-shot) or stopped; True when the last pass had a failed instance."""
    stopping = asyncio.Event()
    on_stop_signals(lambda _signum: stopping.set())
    reconciler = reconciler_for(settings, redis, metrics)
    async with httpx2.AsyncClient(headers={"User-Agent": USER_AGENT}) as http:
        readers = readers_for(settings, http)
        while True:
            reports = await reconcile_all(reconciler, readers, metrics, chat)
            for report in reports:
                sys.stdout.write(orjson.dumps(report.summary()).decode() + "\n")
            sys.stdout.flush()
            failed = any(report.error for report in reports)
            if every is None or await stopped_within(stopping, every):
                return failed


async def reconcile_all(
    reconciler: Reconciler,
    readers: dict[str, JournalReader],
    metrics: ReconcileMetrics,
    chat: ChatRequest | None = None,
) -> Sequence[InstanceReport]:
    """One pass over every instance, concurrently; a failing instance does not stop the others."""
    return await asyncio.gather(
        *(_one(reconciler, reader, name, metrics, chat) for name, reader in readers.items())
    )


async def _one(
    reconciler: Reconciler,
    reader: JournalReader,
    name: str,
    metrics: ReconcileMetrics,
    chat: ChatRequest | None,
) -> InstanceReport:
    try:
        report = await reconciler.run(reader, name, chat)
    except ApiError as error:
        metrics.error(name, error.kind)
        report = InstanceReport(name, error=str(error))
    except RedisError as error:
        metrics.error(name, "enqueue")
        report = InstanceReport(name, error=f"Redis: {type(error).__name__}: {error}")
    level = logging.ERROR if report.error else logging.WARNING if report.recovered else logging.INFO
    log.log(level, "reconciled instance", extra=fields(**report.summary()))
    return report


def reconciler_for(settings: ReconcileSettings, redis: Redis, metrics: ReconcileMetrics) -> Reconciler:
    policy = ReconcilePolicy(
        window_minutes=settings.reconcile_window_minutes,
        grace_seconds=settings.reconcile_grace_seconds,
        marker_seconds=settings.dedup_window_seconds,
    )
    return Reconciler(redis, producer_queue(settings, redis), metrics, policy)


def readers_for(settings: ReconcileSettings, http: httpx2.AsyncClient) -> dict[str, JournalReader]:
    """One journal reader per instance, kept across passes (each keeps its instance's call rate)."""
    policy = JournalPolicy(
        rate_per_second=settings.reconcile_rate_per_second,
        max_attempts=settings.reconcile_max_attempts,
        backoff_base=settings.poll_backoff_base,
        backoff_cap=settings.poll_backoff_cap,
    )
    return {
        instance.name: JournalReader(GreenApiClient(http, instance, settings.poll_request_timeout), policy)
        for instance in settings.instances
    }
