"""Ordered mode's writes: an envelope appended to its chat's partition stream, and a drain to read it.

Every producer writes here the same way: the ingress (asyncio, ``greenq.ingress.partitioned``) and, through
:class:`PartitionedQueue`, the poller, ``greenq reconcile`` and ``greenq dlq replay``. Both build their
commands with the pure functions below, so the entry layout and the drain scheduling cannot drift apart:

* :func:`append_command`: one XADD of the encoded envelope to its partition's stream;
* :func:`schedule_command`: SET NX EX of the partition's *scheduled* flag, sent after the entries landed;
  only the writer that sets it queues a ``drain_partition`` job (:func:`newly_scheduled`). The flag holds
  that job's id (:func:`new_drain_ids`), so a worker's sweep can tell a drain that is queued from one that
  never was (a writer that died or lost Redis between the two round trips) and queue it without waiting
  for the flag to expire.

Each command touches one partition's keys (hash tag ``{pN}``); a transaction holds one partition's entries.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TypeVar
from uuid import uuid4

from redis import Redis
from redis.client import Pipeline
from redis.exceptions import RedisError

from greenq.core import checkpoints, keys, partitions
from greenq.core.contract.envelope import ENVELOPE_FIELD, Envelope
from greenq.core.contract.queue import Enqueued, NotificationQueue
from greenq.core.logs import fields

log = logging.getLogger("greenq.partitions")

#: One Redis command as its arguments (queued with ``pipeline_execute_command``).
Command = tuple[str | bytes | int, ...]

Item = TypeVar("Item")


def partition_of_envelope(envelope: Envelope, partition_count: int) -> int:
    """The partition of an envelope's chat (a body over the processing limit is not parsed: key "")."""
    key = "" if envelope.over_limit is not None else partitions.chat_key_of_body(envelope.raw_body)
    return partitions.partition_of(key, partition_count)


def _identity(envelope: Envelope) -> Envelope:
    return envelope


def grouped_by_partition(
    items: Iterable[Item], envelope_of: Callable[[Item], Envelope], partition_count: int
) -> dict[int, list[Item]]:
    """``items`` per partition, each partition's in the order given (the order they are accepted in)."""
    grouped: dict[int, list[Item]] = {}
    for item in items:
        grouped.setdefault(partition_of_envelope(envelope_of(item), partition_count), []).append(item)
    return grouped


def envelopes_by_partition(envelopes: Iterable[Envelope], partition_count: int) -> dict[int, list[Envelope]]:
    return grouped_by_partition(envelopes, _identity, partition_count)


def append_command(partition: int, envelope: Envelope) -> Command:
    return ("XADD", keys.partition_stream_key(partition), "*", ENVELOPE_FIELD, envelope.encode())


def new_drain_ids(written: Iterable[int]) -> dict[int, str]:
    """A fresh RQ job id per partition, in the order given: the drain this writer queues if it sets the
    partition's flag (the flag holds the id)."""
    return {partition: uuid4().hex for partition in written}


def schedule_command(partition: int, drain_id: str) -> Command:
    flag = keys.partition_scheduled_key(partition)
    return ("SET", flag, drain_id, "NX", "EX", partitions.SCHEDULED_TTL_SECONDS)


def write_commands(by_partition: dict[int, list[Envelope]], drain_ids: Mapping[int, str]) -> list[Command]:
    """Every entry's XADD, then one flag per partition: the replies to the flags come last."""
    appends = [append_command(p, envelope) for p, envelopes in by_partition.items() for envelope in envelopes]
    return [*appends, *(schedule_command(partition, drain_ids[partition]) for partition in by_partition)]


def newly_scheduled(drain_ids: Mapping[int, str], replies: Sequence[object]) -> dict[int, str]:
    """The partitions whose flag this writer set (the last ``len(drain_ids)`` replies, in ``drain_ids``'
    order), each with the id of the drain it needs."""
    flags = replies[len(replies) - len(drain_ids) :]
    return {
        partition: drain_id
        for (partition, drain_id), was_set in zip(drain_ids.items(), flags, strict=True)
        if was_set
    }


class PartitionedQueue:
    """The synchronous producers' writer in ordered mode (``GREENQ_ORDERING=partitioned``)."""

    def __init__(self, connection: Redis, partition_count: int) -> None:
        self._redis = connection
        self._partitions = partition_count
        self._jobs = NotificationQueue(connection)

    def split(self, items: Sequence[Item], envelope_of: Callable[[Item], Envelope]) -> list[list[Item]]:
        """One group per partition: a transaction may hold one partition's entries."""
        return list(grouped_by_partition(items, envelope_of, self._partitions).values())

    def enqueue(self, envelopes: Sequence[Envelope], pipe: Pipeline | None = None) -> Enqueued:
        """Without ``pipe``: appended (non-transactional pipeline, each XADD atomic) and a drain scheduled
        before it returns. With ``pipe`` (the caller's MULTI, of one partition): only queued there; call
        :meth:`settle` after its EXEC."""
        by_partition = envelopes_by_partition(envelopes, self._partitions)
        if pipe is None:
            return self._write(by_partition)
        if len(by_partition) != 1:
            raise ValueError("a transaction holds one partition's entries: split() the envelopes first")
        [partition] = by_partition
        for envelope in envelopes:
            pipe.pipeline_execute_command(*append_command(partition, envelope))
        return Enqueued(keys.partition_stream_key(partition), (partition,))

    def settle(self, enqueued: Enqueued) -> None:
        """After the caller's EXEC: a drain for each partition written that has none scheduled."""
        if not enqueued.pending_drains:
            return
        drain_ids = new_drain_ids(enqueued.pending_drains)
        try:
            with self._redis.pipeline(transaction=False) as pipe:
                for partition, drain_id in drain_ids.items():
                    pipe.pipeline_execute_command(*schedule_command(partition, drain_id))
                replies = pipe.execute()
            self._start_drains(newly_scheduled(drain_ids, replies))
        except RedisError as error:
            self._unscheduled(enqueued.pending_drains, error)

    def _write(self, by_partition: dict[int, list[Envelope]]) -> Enqueued:
        """One round trip (XADDs and flags, as the ingress writes); a second only to queue drain jobs."""
        written = list(by_partition)
        drain_ids = new_drain_ids(written)
        with self._redis.pipeline(transaction=False) as pipe:
            for command in write_commands(by_partition, drain_ids):
                pipe.pipeline_execute_command(*command)
            replies = pipe.execute()
        checkpoints.reached(checkpoints.ENTRIES_APPENDED)
        try:
            self._start_drains(newly_scheduled(drain_ids, replies))
        except RedisError as error:
            self._unscheduled(written, error)
        return Enqueued(" ".join(keys.partition_stream_key(partition) for partition in written))

    def _start_drains(self, unscheduled: dict[int, str]) -> None:
        """Queue each drain under the id its partition's flag holds."""
        if not unscheduled:
            return
        with self._redis.pipeline() as pipe:
            for partition, drain_id in unscheduled.items():
                self._jobs.enqueue_drain(partition, pipeline=pipe, job_id=drain_id)
            pipe.execute()

    @staticmethod
    def _unscheduled(written: Sequence[int], error: RedisError) -> None:
        """The entries are stored; only their drain job is not. The workers' maintenance pass queues it."""
        log.warning(
            "stored, but could not queue the partition's drain; the workers' maintenance pass will",
            extra=fields(partitions=list(written), error=f"{type(error).__name__}: {error}"),
        )
