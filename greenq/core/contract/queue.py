"""The notification queue as every side uses it: the RQ queue, every job's options, envelopes in as jobs.

The ingress, a worker's retry and the ordered-mode drain write through :class:`NotificationQueue`; the
poller, ``greenq reconcile`` and ``greenq dlq replay`` through :class:`JobsQueue` (by default; see
:mod:`.producer`). Workers and readers (``greenq status``, the failed-job registry) build the same RQ queue
with :func:`notification_queue`. A write returns only after Redis has acknowledged it,
which is what makes the ingress's 200 durable; with ``pipeline`` it is only queued on that pipeline.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final, TypeVar

from redis import Redis
from redis.client import Pipeline
from rq import Queue, Retry
from rq.serializers import JSONSerializer

from greenq.core import keys
from greenq.core.contract.envelope import Envelope, batch_to_wire

#: Serializer every side hands to RQ (the queue, the worker, ``Job.fetch``): plain JSON, never pickle.
SERIALIZER: Final = JSONSerializer

#: Seconds one batch job may run before RQ gives up on it.
DEFAULT_JOB_TIMEOUT: Final = 300

#: Whole-job re-runs when a batch could not commit (Redis failed) or its worker died; each notification's own
#: handler retries are separate (settings). Intervals in seconds; they need a worker running RQ's scheduler.
JOB_RETRIES: Final = 5
JOB_RETRY_INTERVALS: Final = (0, 5, 15, 60, 300)  # the first re-run needs no scheduler: it is queued at once

#: Seconds RQ keeps a failed job (a crash, not a handler error: those go to the dead letter).
FAILURE_TTL: Final = 7 * 24 * 3600


Item = TypeVar("Item")


def notification_queue(connection: Redis) -> Queue:
    """The RQ queue that carries greenq's jobs from producers to workers."""
    return Queue(keys.QUEUE_NAME, connection=connection, serializer=SERIALIZER)


class NotificationQueue:
    """Writes envelope batches as jobs on the notification queue (immediately or after a delay)."""

    def __init__(self, connection: Redis) -> None:
        self.rq_queue = notification_queue(connection)

    def enqueue(
        self, envelopes: Sequence[Envelope], delay: float = 0.0, pipeline: Pipeline | None = None
    ) -> str:
        """The job id. With ``delay`` > 0 the job waits in RQ's scheduled registry for a scheduler; with
        ``pipeline`` the write is only queued there (it happens when the caller executes the pipeline)."""
        # Without an explicit description RQ stores repr(args): every body a second time.
        description = f"greenq batch of {len(envelopes)}"
        args = (batch_to_wire(list(envelopes)),)
        return self._enqueue(keys.JOB_FUNCTION, args, description, delay, pipeline)

    def enqueue_drain(
        self, partition: int, delay: float = 0.0, pipeline: Pipeline | None = None, job_id: str | None = None
    ) -> str:
        """The id of a job that drains one partition stream in order (ordered mode: README, Ordering);
        ``job_id``: the id its partition's scheduled flag holds."""
        description = f"greenq drain of partition {partition}"
        return self._enqueue(keys.DRAIN_FUNCTION, (partition,), description, delay, pipeline, job_id=job_id)

    def _enqueue(
        self,
        function: str,
        args: tuple[Any, ...],
        description: str,
        delay: float,
        pipeline: Pipeline | None,
        *,
        job_id: str | None = None,
    ) -> str:
        """Every greenq job's options in one place: no result kept, run again if it raises or is abandoned."""
        options: dict[str, Any] = {
            "args": args,
            "job_timeout": DEFAULT_JOB_TIMEOUT,
            "result_ttl": 0,
            "failure_ttl": FAILURE_TTL,
            # A job that raises (Redis failed mid-batch) or is abandoned (its worker was killed) runs again.
            "retry": Retry(max=JOB_RETRIES, interval=list(JOB_RETRY_INTERVALS)),
            "description": description,
            "pipeline": pipeline,
            "job_id": job_id,
        }
        if delay > 0:
            job = self.rq_queue.enqueue_in(timedelta(seconds=delay), function, **options)
        else:
            job = self.rq_queue.enqueue(function, **options)
        return str(job.id)


@dataclass(frozen=True)
class Enqueued:
    """What a producer's write left: ``ref`` names it in logs (the RQ job id, or in ordered mode the
    partition stream); ``pending_drains``: the partitions whose drain ``settle`` has yet to schedule."""

    ref: str
    pending_drains: tuple[int, ...] = ()


class JobsQueue:
    """The producers' writer with ``GREENQ_ORDERING=jobs``: each enqueue is one RQ batch job (unordered)."""

    def __init__(self, connection: Redis) -> None:
        self._queue = NotificationQueue(connection)

    def split(self, items: Sequence[Item], envelope_of: Callable[[Item], Envelope]) -> list[list[Item]]:
        """All in one group: a job, and anything written with it, is one transaction."""
        return [list(items)] if items else []

    def enqueue(self, envelopes: Sequence[Envelope], pipe: Pipeline | None = None) -> Enqueued:
        """One job; with ``pipe`` only queued there (the caller executes it)."""
        return Enqueued(self._queue.enqueue(envelopes, pipeline=pipe))

    def settle(self, enqueued: Enqueued) -> None:
        """Nothing left to do: once EXEC ran, the job is on the queue."""
