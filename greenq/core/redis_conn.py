"""Building Redis clients from settings, in one place."""

from __future__ import annotations

from typing import Any

import hiredis
from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialBackoff
from redis.connection import HiredisRespSerializer
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


class CommandPacker:
    """redis-py's hiredis packer without its per-argument pass: that copies any bytearray or memoryview
    argument into bytes before packing, which greenq never sends, and cost a worker ~6 % of its CPU (three
    commands per notification in a batch's MULTI). A command hiredis refuses as it is goes through redis-py's
    own packer, so every argument is packed exactly as before."""

    _fallback = HiredisRespSerializer()

    def pack(self, *args: Any) -> list[bytes]:
        name = args[0]
        if isinstance(name, str | bytes) and (" " in name if isinstance(name, str) else b" " in name):
            args = (*name.split(), *args[1:])  # e.g. "CLIENT SETNAME": Redis wants each word separately
        try:
            return [hiredis.pack_command(args)]
        except TypeError:
            return self._fallback.pack(*args)  # type: ignore[no-any-return]


def connect(url: str, socket_timeout: float) -> Redis:
    """A client that fails fast (bounded timeouts) and retries a dropped connection a few times."""
    return Redis.from_url(
        url,
        retry=Retry(_backoff(), retries=RECONNECT_RETRIES),
        command_packer=CommandPacker(),
        **_options(socket_timeout),
    )


def connect_async(url: str, socket_timeout: float, retries: int = RECONNECT_RETRIES) -> AsyncRedis:
    """The asyncio twin of :func:`connect`, for the ingress's event loop (which passes ``NO_RESEND``)."""
    return AsyncRedis.from_url(url, retry=AsyncRetry(_backoff(), retries=retries), **_options(socket_timeout))
