"""Ordered mode: every partition with waiting notifications has a drain queued or running.

A drain is scheduled by whoever sets the partition's *scheduled* flag (``SET NX``, holding the id of the RQ
job it then queues): a producer after its XADDs, or a drain releasing a partition that still has entries.
Those are two round trips, so a producer killed between them, or one that lost Redis there, leaves a flag
with no job behind it. Each worker's maintenance pass (:meth:`DrainScheduler.sweep`) finds such partitions:
no flag at all, or a flag older than :data:`LOST_DRAIN_GRACE_SECONDS` whose job does not exist while no drain
holds the lease. It replaces the lost flag (compare-and-set, so two sweeping workers queue one drain) and
queues the drain at once, instead of waiting for the flag to expire (``SCHEDULED_TTL_SECONDS``).

A second drain of one partition is harmless (the lease lets one run; the other finds it held and ends), so
the checks err towards queueing.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Final

from redis import Redis
from rq.job import Job

from greenq.core import keys, partitions
from greenq.core.contract import NotificationQueue
from greenq.core.contract.partitioned import new_drain_ids
from greenq.core.logs import fields
from greenq.workers.metrics import WorkerMetrics

log = logging.getLogger("greenq.worker")

#: Seconds a flag may name a job that does not exist yet: its writer is between its two round trips.
LOST_DRAIN_GRACE_SECONDS: Final = 5

#: A drain id (a uuid4's hex): flags written by releases before drain ids held ``1`` and are left to expire.
_DRAIN_ID = re.compile(r"[0-9a-f]{32}")

_REPLACE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
  return 1
end
return 0
"""


@dataclass(frozen=True)
class PartitionView:
    """What the sweep reads of one partition, in one pipelined round trip for all of them."""

    waiting: int  #: entries in its stream
    held: int  #: chats held behind a retry
    retry_queued: bool  #: a delayed drain for the held chats is queued
    flag: str | None  #: the scheduled flag: the id of the drain queued for it
    flag_ttl: int  #: seconds the flag has left (negative when absent)
    leased: bool  #: a drain is running

    @property
    def needs_drain(self) -> bool:
        """Entries wait, or held chats do and no delayed drain is queued for them."""
        return bool(self.waiting) or (bool(self.held) and not self.retry_queued)

    @property
    def flag_age(self) -> int:
        return partitions.SCHEDULED_TTL_SECONDS - self.flag_ttl


class DrainScheduler:
    """Queues partition drains: one per partition at a time, none lost."""

    def __init__(self, redis: Redis, partition_count: int, metrics: WorkerMetrics | None = None) -> None:
        self._redis = redis
        self._partitions = partition_count
        self._metrics = metrics
        self._queue = NotificationQueue(redis)
        self._replace = redis.register_script(_REPLACE)

    def schedule(self, partition: int) -> bool:
        """Queue a drain unless one is scheduled; True if this call set the flag and queued it."""
        [drain_id] = new_drain_ids([partition]).values()
        flag = keys.partition_scheduled_key(partition)
        if not self._redis.set(flag, drain_id, nx=True, ex=partitions.SCHEDULED_TTL_SECONDS):
            return False
        self._queue.enqueue_drain(partition, job_id=drain_id)
        return True

    def sweep(self) -> list[int]:
        """Queue a drain for every partition that needs one and has none; returns those partitions. One
        pipelined read of every partition, so it costs a round trip when idle."""
        views = self.read()
        return [partition for partition, view in enumerate(views) if self._ensure(partition, view)]

    def read(self) -> list[PartitionView]:
        with self._redis.pipeline(transaction=False) as pipe:
            for partition in range(self._partitions):
                pipe.xlen(keys.partition_stream_key(partition))
                pipe.hlen(keys.partition_held_key(partition))
                pipe.exists(keys.partition_retry_key(partition))
                pipe.get(keys.partition_scheduled_key(partition))
                pipe.ttl(keys.partition_scheduled_key(partition))
                pipe.exists(keys.partition_lease_key(partition))
            replies = pipe.execute()
        return [_view(replies[6 * partition : 6 * partition + 6]) for partition in range(self._partitions)]

    def _ensure(self, partition: int, view: PartitionView) -> bool:
        if not view.needs_drain:
            return False
        if view.flag is None:
            return self.schedule(partition) and self._report(partition, view, "no_flag")
        if view.leased or not self._lost(view):
            return False
        return self._replace_lost(partition, view.flag) and self._report(partition, view, "lost_job")

    def _report(self, partition: int, view: PartitionView, reason: str) -> bool:
        """Log and count a drain queued for a partition that had none (it heals itself, but an operator
        should see it: it means a producer stopped mid-write or a drain job vanished)."""
        # A missing flag can also be a benign race with a release or a producer's SET NX; a lost job cannot.
        level = logging.WARNING if reason == "lost_job" else logging.INFO
        log.log(
            level,
            "queued the drain of a partition left without one",
            extra=fields(partition=partition, reason=reason, waiting=view.waiting, held=view.held),
        )
        if self._metrics is not None:
            self._metrics.lost_drains.labels(reason=reason).inc()
        return True

    def _lost(self, view: PartitionView) -> bool:
        """The flag names a drain id old enough to have been queued, and no such job exists."""
        if view.flag is None or not _DRAIN_ID.fullmatch(view.flag):
            return False
        return view.flag_age >= LOST_DRAIN_GRACE_SECONDS and not self._redis.exists(Job.key_for(view.flag))

    def _replace_lost(self, partition: int, lost: str) -> bool:
        [drain_id] = new_drain_ids([partition]).values()
        flag = keys.partition_scheduled_key(partition)
        if not self._replace(keys=[flag], args=[lost, drain_id, partitions.SCHEDULED_TTL_SECONDS]):
            return False  # another worker's sweep replaced it first
        self._queue.enqueue_drain(partition, job_id=drain_id)
        return True


def _view(replies: list[object]) -> PartitionView:
    waiting, held, retry_queued, flag, flag_ttl, leased = replies
    return PartitionView(
        waiting=int(waiting),  # type: ignore[call-overload]
        held=int(held),  # type: ignore[call-overload]
        retry_queued=bool(retry_queued),
        flag=flag.decode() if isinstance(flag, bytes) else None,
        flag_ttl=int(flag_ttl),  # type: ignore[call-overload]
        leased=bool(leased),
    )
