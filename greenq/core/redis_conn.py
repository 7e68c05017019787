"""Building Redis clients from settings, in one place."""

from __future__ import annotations

from typing import Any

from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

#: A dropped connection is retried this often, with this backoff, before the caller sees the error.
RECONNECT_RETRIES = 2

#: redis-py's retry re-sends the whole command or transaction, even when Redis applied it and only the reply
#: was lost. Writers that cannot tell must not re-send: the ingress answers 503 instead (GREEN API resends,
#: deduplication recognises the copy), and the worker's commit WATCHes its claims, which makes redis-py
#: raise instead of re-sending.
NO_RESEND = 0


def _options(socket_timeout: float) -> dict[str, Any]:
    """What both clients share: bounded timeouts (fail fast, then 503) and periodic health checks."""
    return {
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": socket_timeout,
        "health_check_interval": 30,
    }


def _backoff() -> ExponentialBackoff:
    return ExponentialBackoff(cap=1.0, base=0.05)


def connect(url: str, socket_timeout: float) -> Redis:
    """A client that fails fast (bounded timeouts) and retries a dropped connection a few times."""
    return Redis.from_url(url, retry=Retry(_backoff(), retries=RECONNECT_RETRIES), **_options(socket_timeout))


def connect_async(url: str, socket_timeout: float, retries: int = RECONNECT_RETRIES) -> AsyncRedis:
    """The asyncio twin of :func:`connect`, for the ingress's event loop (which passes ``NO_RESEND``)."""
    return AsyncRedis.from_url(url, retry=AsyncRetry(_backoff(), retries=retries), **_options(socket_timeout))
