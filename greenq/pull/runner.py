"""Running ``greenq poll``: one asyncio task per instance, a shared HTTP client, metrics, signal handling.

SIGTERM/SIGINT set a stop flag: waiting long polls end at once, notifications in hand finish their enqueue
and delete, then the process exits 0.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from contextlib import closing

import httpx2
from prometheus_client import CollectorRegistry
from redis import Redis

from greenq.core.contract import producer_queue
from greenq.core.greenapi.process import USER_AGENT, configure_api_logging, on_stop_signals, serving_metrics
from greenq.core.logs import fields
from greenq.core.redis_conn import connect
from greenq.core.settings import PollerSettings
from greenq.pull.api import GreenApiClient
from greenq.pull.instance_loop import InstancePoller, PollPolicy
from greenq.pull.metrics import PollerMetrics
from greenq.pull.sink import NotificationSink

log = logging.getLogger("greenq.poller")


def run_poller(settings: PollerSettings) -> int:
    """Poll every configured instance until SIGTERM/SIGINT; the exit code."""
    configure_api_logging(settings)
    registry = CollectorRegistry()
    metrics = PollerMetrics.create(registry, [instance.name for instance in settings.instances])
    with (
        serving_metrics(registry, settings.poller_metrics_host, settings.poller_metrics_port),
        closing(connect(settings.require_redis_url(), settings.redis_socket_timeout)) as redis,
    ):
        _log_start(settings)
        try:
            asyncio.run(_serve(settings, redis, metrics))
        except Exception:
            # A bug, not a GREEN API or Redis failure (those are retried). Logged through the redacting
            # handler, since a traceback may quote a URL; undeleted notifications are received again.
            log.exception("poller crashed")
            return 1
    log.info("poller stopped")
    return 0


def _log_start(settings: PollerSettings) -> None:
    log.info(
        "poller starting",
        extra=fields(
            instances=[instance.name for instance in settings.instances],
            receive_timeout=settings.receive_timeout,
            metrics=f"{settings.poller_metrics_host}:{settings.poller_metrics_port}"
            if settings.poller_metrics_port
            else None,
        ),
    )


async def poll_instances(
    settings: PollerSettings, redis: Redis, metrics: PollerMetrics, stopping: asyncio.Event
) -> None:
    """Run one :class:`InstancePoller` per instance until ``stopping`` is set and all have finished."""
    policy = PollPolicy.from_settings(settings)
    sink = NotificationSink(producer_queue(settings, redis))
    connections = 2 * len(settings.instances) + 2
    limits = httpx2.Limits(max_connections=connections, max_keepalive_connections=connections)
    client = httpx2.AsyncClient(limits=limits, headers={"User-Agent": USER_AGENT})
    async with client as http, asyncio.TaskGroup() as group:
        for instance in settings.instances:
            api = GreenApiClient(http, instance, settings.poll_request_timeout)
            poller = InstancePoller(api, sink, metrics, policy, stopping)
            group.create_task(poller.run(), name=f"poll {instance.name}")


async def _serve(settings: PollerSettings, redis: Redis, metrics: PollerMetrics) -> None:
    stopping = asyncio.Event()
    on_stop_signals(lambda signum: _request_stop(stopping, signum))
    await poll_instances(settings, redis, metrics, stopping)


def _request_stop(stopping: asyncio.Event, signum: int) -> None:
    if not stopping.is_set():
        log.info(
            "stop requested; finishing notifications in hand",
            extra=fields(signal=signal.Signals(signum).name),
        )
    stopping.set()
