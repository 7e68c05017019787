"""The ingress's side of the queue: store envelopes, turning any Redis failure into a 503."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from redis import Redis
from redis.exceptions import RedisError

from greenq.contract import Envelope
from greenq.jobqueue import NotificationQueue
from ingress.errors import Unavailable


@dataclass(frozen=True, slots=True)
class Stored:
    """A durable write: the RQ job that holds the batch, and the queue's length right after it."""

    job_id: str
    queue_depth: int


class Enqueuer:
    """Stores accepted notifications; raises :class:`Unavailable` so GREEN API resends on failure."""

    def __init__(self, connection: Redis) -> None:
        self._redis = connection
        self._queue = NotificationQueue(connection)

    def enqueue(self, envelopes: Sequence[Envelope]) -> Stored:
        """One round trip: the job's MULTI/EXEC plus the queue length (the group commit's backlog signal)."""
        try:
            with self._redis.pipeline() as pipe:
                job_id = self._queue.enqueue(envelopes, pipeline=pipe)
                pipe.llen(self._queue.rq_queue.key)
                depth = pipe.execute()[-1]
        except RedisError as error:
            raise Unavailable(f"could not write to Redis: {type(error).__name__}") from error
        return Stored(job_id, int(depth))
