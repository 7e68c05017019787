"""The RQ job function (``greenq.keys.JOB_FUNCTION``) and the processor it runs.

RQ finds job functions by import path, so the function cannot receive the processor as an argument. The
worker binds its processor here once at start-up (``bind``); a job run anywhere else fails loudly.
"""

from __future__ import annotations

from workers.processing import Processor


class ProcessorNotBound(RuntimeError):
    """``process_batch`` ran in a process where no greenq worker bound a processor."""


class _Binding:
    processor: Processor | None = None


def bind(processor: Processor | None) -> None:
    """Make ``processor`` the one this process's jobs run through (None unbinds)."""
    _Binding.processor = processor


def process_batch(batch: list[object]) -> dict[str, int]:
    """Process one job's notifications; returns outcome counts."""
    processor = _Binding.processor
    if processor is None:
        raise ProcessorNotBound("process_batch needs a greenq worker (greenq worker / workers.runner)")
    return processor.process_batch(batch)
