"""The notification queue as both sides use it: envelopes in, RQ ``process_batch`` jobs out.

A call returns only after Redis has acknowledged the write, which is what makes the ingress's 200 durable.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from redis import Redis
from rq import Queue

from greenq.contract import (
    DEFAULT_JOB_TIMEOUT,
    FAILURE_TTL,
    JOB_FUNCTION,
    QUEUE_NAME,
    SERIALIZER,
    Envelope,
    batch_to_wire,
)


class NotificationQueue:
    """Writes envelope batches as jobs on the notification queue (immediately or after a delay)."""

    def __init__(self, connection: Redis) -> None:
        self.rq_queue = Queue(QUEUE_NAME, connection=connection, serializer=SERIALIZER)

    def enqueue(self, envelopes: Sequence[Envelope], delay: float = 0.0) -> str:
        """The job id; with ``delay`` > 0 the job waits in RQ's scheduled registry for a scheduler."""
        options: dict[str, Any] = {
            "args": (batch_to_wire(list(envelopes)),),
            "job_timeout": DEFAULT_JOB_TIMEOUT,
            "result_ttl": 0,
            "failure_ttl": FAILURE_TTL,
            # Without an explicit description RQ stores repr(args): every body a second time.
            "description": f"greenq batch of {len(envelopes)}",
        }
        if delay > 0:
            job = self.rq_queue.enqueue_in(timedelta(seconds=delay), JOB_FUNCTION, **options)
        else:
            job = self.rq_queue.enqueue(JOB_FUNCTION, **options)
        return str(job.id)
