"""Everything an ingress process needs per request, built once from the settings."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry
from redis.asyncio import Redis as AsyncRedis

from greenq.redis_conn import NO_RESEND, connect_async
from greenq.settings import IngressSettings
from ingress.auth import TokenAuthenticator
from ingress.client_ip import ClientAddressPolicy
from ingress.enqueue import Enqueuer
from ingress.group_commit import GroupCommitter
from ingress.metrics import IngressMetrics


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
            Enqueuer(redis).enqueue,
            max_batch=settings.batch_max_size,
            max_delay=settings.batch_max_delay_ms / 1000,
            backlog_delay=settings.batch_backlog_delay_ms / 1000,
        ),
        metrics=IngressMetrics.create(registry),
        registry=registry,
    )
