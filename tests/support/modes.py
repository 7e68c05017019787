"""Both ordering modes for tests that run the same scenario in each: the worker settings of each mode and
how a batch of bodies reaches the workers in it (one RQ job, or the partition streams)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis import Redis

from greenq.core.contract import Envelope, NotificationQueue
from greenq.local.redis_server import LocalRedis
from tests.support.ordering import accept

PARTITIONS = 2
MODES: dict[str, dict[str, Any]] = {
    "jobs": {"ordering": "jobs"},
    "partitioned": {"ordering": "partitioned", "partitions": PARTITIONS},
}


def send(redis_server: LocalRedis, redis_conn: Redis, mode: str, bodies: Sequence[bytes]) -> None:
    """Hand ``bodies`` to the workers as one batch: one RQ job, or the partition streams (ordered)."""
    if mode == "partitioned":
        accept(redis_server, bodies, flush=len(bodies), count=PARTITIONS)
    else:
        NotificationQueue(redis_conn).enqueue([Envelope.of_bytes(body, "webhook") for body in bodies])
