"""Running ``greenq send``: the instances' APIs, Redis, leases, metrics, and SIGTERM handling.

SIGTERM/SIGINT: no new call starts, calls in flight finish (up to ``send_stop_timeout``), every lease is
released so other replicas take the partitions at once, then the process exits 0.
"""

from __future__ import annotations

import asyncio
import logging
import signal

import httpx2
from prometheus_client import CollectorRegistry

from greenq.core.greenapi.process import (
    SENDER_USER_AGENT,
    configure_api_logging,
    on_stop_signals,
    serving_metrics,
)
from greenq.core.logs import fields
from greenq.core.redis_conn import NO_RESEND, connect_async
from greenq.core.settings import SenderSettings
from greenq.sender.api import SendingApi
from greenq.sender.delivery import Delivery, SendPolicy
from greenq.sender.leases import Leases
from greenq.sender.ledger import Ledger
from greenq.sender.metrics import Backlog, SenderMetrics
from greenq.sender.owner import PartitionOwner
from greenq.sender.pacing import Pacer
from greenq.sender.partition import PartitionSender, Reading

log = logging.getLogger("greenq.sender")


def run_sender(settings: SenderSettings) -> int:
    """Deliver the outbox until SIGTERM/SIGINT; the exit code."""
    configure_api_logging(settings)
    registry = CollectorRegistry()
    metrics = SenderMetrics.create(registry, [instance.name for instance in settings.instances])
    with serving_metrics(registry, settings.send_metrics_host, settings.send_metrics_port):
        log.info("sender starting", extra=fields(instances=[i.name for i in settings.instances]))
        try:
            asyncio.run(_serve(settings, metrics))
        except Exception:
            log.exception("sender crashed")  # through the redacting filter: a traceback may quote a URL
            return 1
    log.info("sender stopped")
    return 0


async def _serve(settings: SenderSettings, metrics: SenderMetrics) -> None:
    stopping = asyncio.Event()
    on_stop_signals(lambda signum: _request_stop(stopping, signum))
    await send_outbox(settings, metrics, stopping)


async def send_outbox(settings: SenderSettings, metrics: SenderMetrics, stopping: asyncio.Event) -> None:
    """Deliver this replica's share of the outbox partitions until ``stopping`` is set."""
    # No automatic re-send: a transaction whose reply was lost is not repeated (a dead letter would be
    # written twice); its partition stops instead and is taken up again at the next lease round.
    timeout = settings.redis_socket_timeout + settings.send_block_ms / 1000
    redis = connect_async(settings.require_redis_url(), timeout, retries=NO_RESEND)
    limits = httpx2.Limits(max_connections=settings.send_concurrency + 4)
    async with redis, httpx2.AsyncClient(limits=limits, headers={"User-Agent": SENDER_USER_AGENT}) as http:
        apis = {i.id_instance: SendingApi(http, i, settings.send_request_timeout) for i in settings.instances}
        leases = Leases(redis, settings.partitions, settings.send_lease_seconds)
        ledger = Ledger(redis, leases.owner, settings.reply_ttl_seconds)
        pacer = Pacer(redis, settings.send_settings_cache_seconds)
        delivery = Delivery(apis, ledger, pacer, metrics, SendPolicy.from_settings(settings))
        backlog = Backlog(names={i.id_instance: i.name for i in settings.instances})
        shared = (asyncio.Semaphore(settings.send_concurrency), backlog)
        reading = Reading(block_ms=settings.send_block_ms, read_ahead=settings.send_read_ahead)

        def make_sender(partition: int) -> PartitionSender:
            return PartitionSender(partition, redis, delivery, shared, reading)

        owner = PartitionOwner(redis, leases, make_sender, (metrics, backlog), settings.partitions)
        await owner.run(stopping, settings.send_lease_seconds / 3, settings.send_stop_timeout)


def _request_stop(stopping: asyncio.Event, signum: int) -> None:
    if not stopping.is_set():
        log.info(
            "stop requested; finishing calls in flight", extra=fields(signal=signal.Signals(signum).name)
        )
    stopping.set()
