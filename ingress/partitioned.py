"""The ingress's side of ordered mode: each envelope appended to its chat's partition stream.

One round trip per flush: a non-transactional pipeline of XADDs (each is atomic and touches one partition's
stream) plus a ``SET NX`` of each touched partition's *scheduled* flag. Only when a flag was not set yet (no
drain queued or running for that partition) does a second round trip queue an RQ drain job. Any failed
command makes the whole flush a 503: GREEN API resends, and the workers' claims turn a copy that did land
into a ``duplicate``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from redis.asyncio import Redis as AsyncRedis
from redis.exceptions import RedisError

from greenq.core import keys, partitions
from greenq.core.contract import ENVELOPE_FIELD, Envelope
from greenq.ingress.enqueue import RecordedQueue, Stored
from greenq.ingress.errors import Unavailable


class PartitionedEnqueuer:
    """Stores accepted notifications in partition streams; raises :class:`Unavailable` on failure."""

    def __init__(self, connection: AsyncRedis, partition_count: int) -> None:
        self._redis = connection
        self._partitions = partition_count
        self._recorded = RecordedQueue(connection)

    async def enqueue(self, envelopes: Sequence[Envelope]) -> Stored:
        by_partition: dict[int, list[bytes]] = defaultdict(list)
        for envelope in envelopes:
            key = partitions.chat_key_of_body(envelope.raw_body) if envelope.over_limit is None else ""
            by_partition[partitions.partition_of(key, self._partitions)].append(envelope.encode())
        try:
            flags = await self._append(by_partition)
            unscheduled = [partition for partition, was_set in flags if was_set]
            if unscheduled:
                await self._schedule(unscheduled)
        except RedisError as error:
            raise Unavailable(f"could not write to Redis: {type(error).__name__}") from error
        return Stored("partitioned", 0)

    async def _append(self, by_partition: dict[int, list[bytes]]) -> list[tuple[int, bool]]:
        async with self._redis.pipeline(transaction=False) as pipe:
            for partition, wires in by_partition.items():
                for wire in wires:
                    pipe.xadd(keys.partition_stream_key(partition), {ENVELOPE_FIELD: wire})
            for partition in by_partition:
                pipe.set(
                    keys.partition_scheduled_key(partition),
                    1,
                    nx=True,
                    ex=partitions.SCHEDULED_TTL_SECONDS,
                )
            replies = await pipe.execute(raise_on_error=True)
        flags = replies[-len(by_partition) :]
        return [(partition, bool(flag)) for partition, flag in zip(by_partition, flags, strict=True)]

    async def _schedule(self, unscheduled: list[int]) -> None:
        """Queue one drain job per partition that had none (RQ's enqueue, recorded and sent here)."""
        recording = await self._recorded.recording()
        for partition in unscheduled:
            self._recorded.queue.enqueue_drain(partition, pipeline=recording)
        async with self._redis.pipeline(transaction=True) as pipe:
            self._recorded.replay(recording, pipe)
            await pipe.execute()
