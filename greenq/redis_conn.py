"""Building Redis clients from settings, in one place."""

from __future__ import annotations

from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialBackoff
from redis.retry import Retry


def connect(url: str, socket_timeout: float) -> Redis:
    """A client that fails fast (bounded timeouts) and retries a dropped connection a few times."""
    return Redis.from_url(
        url,
        socket_timeout=socket_timeout,
        socket_connect_timeout=socket_timeout,
        health_check_interval=30,
        retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), retries=2),
    )


def connect_async(url: str, socket_timeout: float) -> AsyncRedis:
    """The asyncio twin of :func:`connect`, for the ingress's event loop."""
    return AsyncRedis.from_url(
        url,
        socket_timeout=socket_timeout,
        socket_connect_timeout=socket_timeout,
        health_check_interval=30,
        retry=AsyncRetry(ExponentialBackoff(cap=1.0, base=0.05), retries=2),
    )
