"""greenq's RQ job class: RQ still schedules, runs, retries and records each job; greenq adds two things.

* The running worker's context (``greenq.workers.jobs.WorkerContext``) becomes the job function's first
  argument, as arq hands ``ctx`` to its jobs: ``GreenqWorker.perform_job`` gives it to the job just before
  RQ performs it. A job run by a plain RQ worker fails loudly instead of running without a processor.
* A function path written by the previous release resolves to today's (``greenq.workers.legacy``).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from rq.job import Job
from rq.utils import import_attribute

from greenq.workers import legacy
from greenq.workers.jobs import WorkerContext


class NoWorkerContext(RuntimeError):
    """A greenq job ran without a greenq worker's context (not through ``greenq worker``)."""


class GreenqJob(Job):
    """An RQ job whose function takes the running greenq worker's context as its first argument."""

    #: Handed over by the greenq worker that runs the job (GreenqWorker.perform_job); None until then.
    context: WorkerContext | None = None

    @property
    def func(self) -> Callable[..., Any]:
        """The job's function, found by today's path, with the worker's context as its first argument."""
        if self.context is None:
            raise NoWorkerContext(f"job {self.id} ({self.func_name}) needs a greenq worker (greenq worker)")
        name = self.func_name
        if name is None:
            raise ValueError(f"job {self.id} names no function")
        return partial(import_attribute(legacy.JOB_FUNCTIONS.get(name, name)), self.context)
