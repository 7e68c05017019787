"""The ingress's side of the queue: store envelopes as one RQ job, turning any Redis failure into a 503.

RQ builds the job (its format, its keys) into a *recording* pipeline that never touches the network; the
recorded commands are then sent on an asyncio Redis client inside the event loop. No thread and no GIL
hand-off per write, while the job in Redis is exactly what ``Queue.enqueue`` would have written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from redis import Redis
from redis.asyncio import Redis as AsyncRedis
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

    def __init__(self, connection: AsyncRedis) -> None:
        self._redis = connection
        # Only used to create pipelines that record commands; it connects once, for RQ to read the server's
        # version, so it must point at the configured server (never a default address).
        self._recorder = NotificationQueue(_sync_twin(connection))

    async def enqueue(self, envelopes: Sequence[Envelope]) -> Stored:
        """One round trip: the job's MULTI/EXEC plus the queue length (the group commit's backlog signal)."""
        recording = self._recorder.rq_queue.connection.pipeline()
        job_id = self._recorder.enqueue(envelopes, pipeline=recording)
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                for args, options in recording.command_stack:
                    pipe.pipeline_execute_command(*args, **options)  # type: ignore[no-untyped-call]
                pipe.llen(self._recorder.rq_queue.key)
                results = await pipe.execute()
        except RedisError as error:
            raise Unavailable(f"could not write to Redis: {type(error).__name__}") from error
        return Stored(job_id, int(results[-1]))


def _sync_twin(connection: AsyncRedis) -> Redis:
    """A synchronous client for the same server and database as ``connection``."""
    kwargs = connection.connection_pool.connection_kwargs
    return Redis(
        **{name: kwargs[name] for name in ("host", "port", "db", "username", "password") if name in kwargs}
    )
