"""The one place a producer's writer is chosen: RQ batch jobs, or (ordered mode) the chats' partitions.

The poller, ``greenq reconcile`` and ``greenq dlq replay`` build their writer with :func:`producer_queue`
from their settings and use only :class:`ProducerQueue`, so neither knows which mode runs. A producer that
writes its own keys in the same transaction (reconcile's markers, replay's dead-letter removal) opens one
MULTI per group :meth:`~ProducerQueue.split` gives, enqueues the group on it, executes it and then calls
:meth:`~ProducerQueue.settle`. With RQ jobs a group is the whole batch and ``settle`` does nothing; in
ordered mode a group is one partition's entries (no transaction spans two partitions) and ``settle``
schedules the partition's drain.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

from redis import Redis
from redis.client import Pipeline

from greenq.core.contract.envelope import Envelope
from greenq.core.contract.partitioned import PartitionedQueue
from greenq.core.contract.queue import Enqueued, JobsQueue
from greenq.core.settings import CommonSettings

Item = TypeVar("Item")


class ProducerQueue(Protocol):
    """How a producer hands notifications to the workers, whichever the ordering."""

    def split(self, items: Sequence[Item], envelope_of: Callable[[Item], Envelope]) -> list[list[Item]]:
        """``items`` in the groups one transaction may hold, each in the order given."""
        ...

    def enqueue(self, envelopes: Sequence[Envelope], pipe: Pipeline | None = None) -> Enqueued:
        """Stored (and its processing scheduled) when it returns; with ``pipe`` (a MULTI holding one
        group) only queued there: execute it, then :meth:`settle` the result."""
        ...

    def settle(self, enqueued: Enqueued) -> None:
        """After the EXEC of an enqueue on a pipe: schedule its processing (never raises)."""
        ...


def producer_queue(settings: CommonSettings, connection: Redis) -> ProducerQueue:
    """The writer ``GREENQ_ORDERING`` asks for (every greenq process must be in the same mode)."""
    if settings.ordering == "partitioned":
        return PartitionedQueue(connection, settings.partitions)
    return JobsQueue(connection)
