"""The ingress's side of the queue: store envelopes as one RQ job, turning any Redis failure into a 503.

RQ builds the job (its format, its keys) into a *recording* pipeline that never touches the network; the
recorded commands are then sent on an asyncio Redis client inside the event loop. No thread and no GIL
hand-off per write, while the job in Redis is exactly what ``Queue.enqueue`` would have written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from redis import ConnectionPool, Redis
from redis.asyncio import Redis as AsyncRedis
from redis.connection import Connection
from redis.exceptions import RedisError

from greenq.core.contract import Envelope
from greenq.core.jobqueue import NotificationQueue
from greenq.ingress.errors import Unavailable


@dataclass(frozen=True, slots=True)
class Stored:
    """A durable write: the RQ job that holds the batch, and the queue's length right after it."""

    job_id: str
    queue_depth: int


class RecorderMisuse(RuntimeError):
    """Something tried to use the recording client's network connection: a bug, never a Redis outage."""


class _NoNetworkConnection(Connection):
    """A connection that refuses to connect, so the recorder can never reach a default address."""

    def connect(self) -> NoReturn:
        raise RecorderMisuse("the ingress's recording Redis client must never connect; use the real client")


def recording_client() -> Redis:
    """A sync client whose only use is building pipelines that record commands; connecting raises."""
    return Redis(connection_pool=ConnectionPool(connection_class=_NoNetworkConnection))


def parse_server_version(info: dict[str, Any]) -> tuple[int, int, int]:
    """``INFO server``'s ``redis_version`` as RQ keeps it (a 3-tuple)."""
    major, minor, patch = (int(part) for part in str(info["redis_version"]).split(".")[:3])
    return major, minor, patch


class Enqueuer:
    """Stores accepted notifications; raises :class:`Unavailable` so GREEN API resends on failure."""

    def __init__(self, connection: AsyncRedis) -> None:
        self._redis = connection
        self._recorder = NotificationQueue(recording_client())

    async def enqueue(self, envelopes: Sequence[Envelope]) -> Stored:
        """One round trip: the job's MULTI/EXEC plus the queue length (the group commit's backlog signal)."""
        try:
            await self._learn_server_version()
            recording = self._recorder.rq_queue.connection.pipeline()
            job_id = self._recorder.enqueue(envelopes, pipeline=recording)
            async with self._redis.pipeline(transaction=True) as pipe:
                for args, options in recording.command_stack:
                    pipe.pipeline_execute_command(*args, **options)  # type: ignore[no-untyped-call]
                pipe.llen(self._recorder.rq_queue.key)
                results = await pipe.execute()
        except RedisError as error:
            raise Unavailable(f"could not write to Redis: {type(error).__name__}") from error
        return Stored(job_id, int(results[-1]))

    async def _learn_server_version(self) -> None:
        """RQ stamps each job with the server's version; ask the real server once, on the event loop."""
        queue = self._recorder.rq_queue
        if queue.redis_server_version is None:
            queue.redis_server_version = parse_server_version(await self._redis.info("server"))
