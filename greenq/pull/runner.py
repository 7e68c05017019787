"""Running ``greenq poll``: one asyncio task per instance, a shared HTTP client, metrics, signal handling.

SIGTERM/SIGINT set a stop flag: waiting long polls end at once, notifications in hand finish their enqueue
and delete, then the process exits 0.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from urllib.parse import urlsplit

import httpx2
from prometheus_client import CollectorRegistry, start_http_server
from redis import Redis

from greenq.core.contract import NotificationQueue
from greenq.core.logs import configure_logging, fields
from greenq.core.redis_conn import connect
from greenq.core.settings import PollerSettings
from greenq.pull.api import GreenApiClient
from greenq.pull.instance_loop import InstancePoller, PollPolicy
from greenq.pull.masking import RedactingFilter
from greenq.pull.metrics import PollerMetrics
from greenq.pull.sink import NotificationSink

log = logging.getLogger("greenq.poller")

USER_AGENT = "greenq-poller/0.1"


def run_poller(settings: PollerSettings) -> int:
    """Poll every configured instance until SIGTERM/SIGINT; the exit code."""
    configure_poller_logging(settings)
    registry = CollectorRegistry()
    metrics = PollerMetrics.create(registry, [instance.name for instance in settings.instances])
    server = None
    if settings.poller_metrics_port:
        server, _ = start_http_server(
            settings.poller_metrics_port, addr=settings.poller_metrics_host, registry=registry
        )
    redis = connect(settings.require_redis_url(), settings.redis_socket_timeout)
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
    try:
        asyncio.run(_serve(settings, redis, metrics))
    except Exception:
        # A bug, not a GREEN API or Redis failure (those are retried). Logged through the redacting
        # handler, since a traceback may quote a URL; undeleted notifications are received again.
        log.exception("poller crashed")
        return 1
    finally:
        redis.close()
        if server is not None:
            server.shutdown()
    log.info("poller stopped")
    return 0


def configure_poller_logging(settings: PollerSettings) -> None:
    """JSON logs as elsewhere, HTTP client chatter off, and every secret redacted from every record."""
    configure_logging(settings.log_level)
    for name in ("httpx2", "httpcore2"):
        logging.getLogger(name).setLevel(logging.WARNING)
    secrets = [instance.api_token.get_secret_value() for instance in settings.instances]
    password = urlsplit(settings.require_redis_url()).password
    redacting = RedactingFilter([*secrets, password or ""])
    for handler in logging.getLogger().handlers:
        handler.addFilter(redacting)


async def poll_instances(
    settings: PollerSettings, redis: Redis, metrics: PollerMetrics, stopping: asyncio.Event
) -> None:
    """Run one :class:`InstancePoller` per instance until ``stopping`` is set and all have finished."""
    policy = PollPolicy.from_settings(settings)
    sink = NotificationSink(NotificationQueue(redis))
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
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, _request_stop, stopping, signum)
    await poll_instances(settings, redis, metrics, stopping)


def _request_stop(stopping: asyncio.Event, signum: int) -> None:
    if not stopping.is_set():
        log.info(
            "stop requested; finishing notifications in hand",
            extra=fields(signal=signal.Signals(signum).name),
        )
    stopping.set()
