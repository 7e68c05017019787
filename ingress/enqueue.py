"""The ingress's side of the queue: store envelopes as one RQ job, turning any Redis failure into a 503.

The job contract (:mod:`greenq.core.contract`) builds the job (its format, its keys, its options) into a
*recording* pipeline that never touches the network; the recorded commands are then sent on an asyncio Redis
client inside the event loop. No thread and no GIL hand-off per write, while the job in Redis is exactly
what ``NotificationQueue.enqueue`` writes everywhere else.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from redis import ConnectionPool, Redis
from redis.asyncio import Redis as AsyncRedis
from redis.asyncio.client import Pipeline as AsyncPipeline
from redis.client import Pipeline
from redis.connection import Connection
from redis.exceptions import RedisError

from greenq.core.contract import Envelope, NotificationQueue
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


class RecordedQueue:
    """The notification queue on a recording client, whose recordings are sent on the asyncio client."""

    def __init__(self, connection: AsyncRedis) -> None:
        self._redis = connection
        self.queue = NotificationQueue(recording_client())

    async def recording(self) -> Pipeline:
        """A fresh pipeline to record jobs on. RQ stamps each job with the server's version: the real
        server is asked once, on the event loop."""
        rq_queue = self.queue.rq_queue
        if rq_queue.redis_server_version is None:
            rq_queue.redis_server_version = parse_server_version(await self._redis.info("server"))
        return rq_queue.connection.pipeline()

    @staticmethod
    def replay(recording: Pipeline, pipe: AsyncPipeline) -> None:
        """Queue the recorded commands on ``pipe`` (the caller executes it)."""
        for args, options in recording.command_stack:
            pipe.pipeline_execute_command(*args, **options)  # type: ignore[no-untyped-call]


class Enqueuer:
    """Stores accepted notifications; raises :class:`Unavailable` so GREEN API resends on failure."""

    def __init__(self, connection: AsyncRedis) -> None:
        self._redis = connection
        self._recorded = RecordedQueue(connection)

    async def enqueue(self, envelopes: Sequence[Envelope]) -> Stored:
        """One round trip: the job's MULTI/EXEC plus the queue length (the group commit's backlog signal)."""
        try:
            recording = await self._recorded.recording()
            job_id = self._recorded.queue.enqueue(envelopes, pipeline=recording)
            async with self._redis.pipeline(transaction=True) as pipe:
                self._recorded.replay(recording, pipe)
                pipe.llen(self._recorded.queue.rq_queue.key)
                results = await pipe.execute()
        except RedisError as error:
            raise Unavailable(f"could not write to Redis: {type(error).__name__}") from error
        return Stored(job_id, int(results[-1]))
