"""The ingress's side of ordered mode: each envelope appended to its chat's partition stream.

One round trip per flush: a non-transactional pipeline (``raw_pipeline.send_all``) of XADDs (each is atomic
and touches one partition's stream) plus a ``SET NX`` of each touched partition's *scheduled* flag, built by
the same functions as every other producer's writes (``greenq.core.contract.partitioned``). Only when a flag
was not set yet (no drain queued or running for that partition) does a second round trip queue an RQ drain
job. Any failed command makes the whole flush a 503: GREEN API resends, and the workers' claims turn a copy
that did land into a ``duplicate``.
"""

from __future__ import annotations

from collections.abc import Sequence

from redis.asyncio import Redis as AsyncRedis
from redis.exceptions import RedisError

from greenq.core import checkpoints
from greenq.core.contract import Envelope
from greenq.core.contract.partitioned import (
    envelopes_by_partition,
    new_drain_ids,
    newly_scheduled,
    write_commands,
)
from greenq.ingress.enqueue import RecordedQueue, Stored
from greenq.ingress.errors import Unavailable
from greenq.ingress.raw_pipeline import send_all


class PartitionedEnqueuer:
    """Stores accepted notifications in partition streams; raises :class:`Unavailable` on failure."""

    def __init__(self, connection: AsyncRedis, partition_count: int) -> None:
        self._redis = connection
        self._partitions = partition_count
        self._recorded = RecordedQueue(connection)

    async def enqueue(self, envelopes: Sequence[Envelope]) -> Stored:
        by_partition = envelopes_by_partition(envelopes, self._partitions)
        try:
            unscheduled = await self._append(by_partition)
            checkpoints.reached(checkpoints.ENTRIES_APPENDED)
            if unscheduled:
                await self._schedule(unscheduled)
        except RedisError as error:
            raise Unavailable(f"could not write to Redis: {type(error).__name__}") from error
        return Stored("partitioned", 0)

    async def _append(self, by_partition: dict[int, list[Envelope]]) -> dict[int, str]:
        """The partitions that had no drain scheduled (this writer set their flag), with their drain's id."""
        drain_ids = new_drain_ids(by_partition)
        replies = await send_all(self._redis, write_commands(by_partition, drain_ids))
        return newly_scheduled(drain_ids, replies)

    async def _schedule(self, unscheduled: dict[int, str]) -> None:
        """Queue one drain job per partition that had none (RQ's enqueue, recorded and sent here), under
        the id its flag holds."""
        recording = await self._recorded.recording()
        for partition, drain_id in unscheduled.items():
            self._recorded.queue.enqueue_drain(partition, pipeline=recording, job_id=drain_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            self._recorded.replay(recording, pipe)
            await pipe.execute()
