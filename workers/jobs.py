"""The RQ job functions (``greenq.core.keys.JOB_FUNCTION``, ``keys.DRAIN_FUNCTION``) and their context.

RQ stores a job's function by import path, and its arguments are the notifications, never the processor.
As in arq, the worker that runs a job hands over what it built at start-up as the function's first
argument: a :class:`WorkerContext` (``greenq.workers.rq_job.GreenqJob`` passes it). Nothing is
process-global, so two workers in one process (tests) run their jobs through their own processors.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from rq import get_current_job

from greenq.workers.drain import PartitionDrain
from greenq.workers.processing import Processor


@dataclass(frozen=True)
class WorkerContext:
    """What a greenq worker hands every job it runs: its processor and its partition drain."""

    processor: Processor
    drain: PartitionDrain


def process_batch(ctx: WorkerContext, batch: list[object]) -> dict[str, int]:
    """Process one job's notifications; returns outcome counts."""
    return ctx.processor.process_batch(batch)


def drain_partition(ctx: WorkerContext, partition: int) -> int:
    """Drain one partition stream in per-chat order (ordered mode); returns notifications settled."""
    job = get_current_job()
    return ctx.drain.drain(int(partition), job.id if job is not None else uuid.uuid4().hex)
