"""Everything an ingress process needs per request, built once from the settings."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry
from redis.asyncio import Redis as AsyncRedis

from greenq.core.redis_conn import NO_RESEND, connect_async
from greenq.core.settings import IngressSettings
from greenq.ingress.auth import TokenAuthenticator
from greenq.ingress.client_ip import ClientAddressPolicy
from greenq.ingress.enqueue import Enqueuer
from greenq.ingress.group_commit import GroupCommitter, WriteBatch
from greenq.ingress.metrics import IngressMetrics
from greenq.ingress.partitioned import PartitionedEnqueuer


@dataclass(frozen=True)
class IngressComponents:
    """The per-process pieces; requests only read them."""

    settings: IngressSettings
    redis: AsyncRedis
    auth: TokenAuthenticator
    addresses: ClientAddressPolicy
    committer: GroupCommitter
    metrics: IngressMetrics
    registry: CollectorRegistry


def build_components(settings: IngressSettings, connection: AsyncRedis | None = None) -> IngressComponents:
    redis = (
        connection
        if connection is not None
        else connect_async(settings.require_redis_url(), settings.redis_socket_timeout, retries=NO_RESEND)
    )
    registry = CollectorRegistry()
    return IngressComponents(
        settings=settings,
        redis=redis,
        auth=TokenAuthenticator(settings.tokens, settings.allow_unauthenticated),
        addresses=ClientAddressPolicy(settings.allowed_ips, settings.trusted_proxies),
        committer=GroupCommitter(
            _writer(settings, redis),
            max_batch=settings.batch_max_size,
            max_delay=settings.batch_max_delay_ms / 1000,
            backlog_delay=settings.batch_backlog_delay_ms / 1000,
        ),
        metrics=IngressMetrics.create(registry),
        registry=registry,
    )


def _writer(settings: IngressSettings, redis: AsyncRedis) -> WriteBatch:
    """RQ batch jobs, or (ordered mode) per-chat partition streams."""
    if settings.ordering == "partitioned":
        return PartitionedEnqueuer(redis, settings.partitions).enqueue
    return Enqueuer(redis).enqueue
