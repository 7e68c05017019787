"""The notification queue as both sides use it: envelopes in, RQ ``process_batch`` jobs out.

A call returns only after Redis has acknowledged the write, which is what makes the ingress's 200 durable.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from redis import Redis
from redis.client import Pipeline
from rq import Queue, Retry

from greenq.core import partitions
from greenq.core.contract import (
    DEFAULT_JOB_TIMEOUT,
    FAILURE_TTL,
    JOB_FUNCTION,
    JOB_RETRIES,
    JOB_RETRY_INTERVALS,
    QUEUE_NAME,
    SERIALIZER,
    Envelope,
    batch_to_wire,
)


class NotificationQueue:
    """Writes envelope batches as jobs on the notification queue (immediately or after a delay)."""

    def __init__(self, connection: Redis) -> None:
        self.rq_queue = Queue(QUEUE_NAME, connection=connection, serializer=SERIALIZER)

    def enqueue(
        self, envelopes: Sequence[Envelope], delay: float = 0.0, pipeline: Pipeline | None = None
    ) -> str:
        """The job id. With ``delay`` > 0 the job waits in RQ's scheduled registry for a scheduler; with
        ``pipeline`` the write is only queued there (it happens when the caller executes the pipeline)."""
        # Without an explicit description RQ stores repr(args): every body a second time.
        description = f"greenq batch of {len(envelopes)}"
        args = (batch_to_wire(list(envelopes)),)
        return self._enqueue(JOB_FUNCTION, args, description, delay, pipeline)

    def enqueue_drain(self, partition: int, delay: float = 0.0, pipeline: Pipeline | None = None) -> str:
        """The id of a job that drains one partition stream in order (ordered mode: README, Ordering)."""
        description = f"greenq drain of partition {partition}"
        return self._enqueue(partitions.DRAIN_FUNCTION, (partition,), description, delay, pipeline)

    def _enqueue(
        self, function: str, args: tuple[Any, ...], description: str, delay: float, pipeline: Pipeline | None
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
        }
        if delay > 0:
            job = self.rq_queue.enqueue_in(timedelta(seconds=delay), function, **options)
        else:
            job = self.rq_queue.enqueue(function, **options)
        return str(job.id)
