"""The RQ job function (``greenq.core.keys.JOB_FUNCTION``) and the processor it runs.

RQ finds job functions by import path, so the function cannot receive the processor as an argument. The
worker binds its processor here once at start-up (``bind``); a job run anywhere else fails loudly.
"""

from __future__ import annotations

import uuid

from rq import get_current_job

from greenq.workers.drain import PartitionDrain
from greenq.workers.processing import Processor


class ProcessorNotBound(RuntimeError):
    """``process_batch`` ran in a process where no greenq worker bound a processor."""


class _Binding:
    processor: Processor | None = None
    drain: PartitionDrain | None = None


def bind(processor: Processor | None, drain: PartitionDrain | None = None) -> None:
    """Make ``processor`` the one this process's jobs run through (None unbinds); ``drain`` serves
    ``drain_partition`` jobs (ordered mode)."""
    _Binding.processor = processor
    _Binding.drain = drain


def process_batch(batch: list[object]) -> dict[str, int]:
    """Process one job's notifications; returns outcome counts."""
    processor = _Binding.processor
    if processor is None:
        raise ProcessorNotBound("process_batch needs a greenq worker (greenq worker / greenq.workers.runner)")
    return processor.process_batch(batch)


def drain_partition(partition: int) -> int:
    """Drain one partition stream in per-chat order (ordered mode); returns notifications settled."""
    drain = _Binding.drain
    if drain is None:
        raise ProcessorNotBound(
            "drain_partition needs a greenq worker (greenq worker / greenq.workers.runner)"
        )
    job = get_current_job()
    return drain.drain(int(partition), job.id if job is not None else uuid.uuid4().hex)


def bound_drain() -> PartitionDrain | None:
    """The drain bound in this process, if any."""
    return _Binding.drain
