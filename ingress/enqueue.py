"""The ingress's side of the queue: store envelopes, turning any Redis failure into a 503."""

from __future__ import annotations

from collections.abc import Sequence

from redis import Redis
from redis.exceptions import RedisError

from greenq.contract import Envelope
from greenq.jobqueue import NotificationQueue
from ingress.errors import Unavailable


class Enqueuer:
    """Stores accepted notifications; raises :class:`Unavailable` so GREEN API resends on failure."""

    def __init__(self, connection: Redis) -> None:
        self._queue = NotificationQueue(connection)

    def enqueue(self, envelopes: Sequence[Envelope]) -> str:
        try:
            return self._queue.enqueue(envelopes)
        except RedisError as error:
            raise Unavailable(f"could not write to Redis: {type(error).__name__}") from error
