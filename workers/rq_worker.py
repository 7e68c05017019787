"""greenq's RQ worker class: RQ's SimpleWorker with fast, bounded recovery of a killed worker's job.

The worker owns the context its jobs run with (``greenq.workers.jobs.WorkerContext``: the processor and
the partition drain) and hands it to each job it performs (``greenq.workers.rq_job.GreenqJob``).

Stock RQ notices a job whose worker died only after the job timeout plus a minute, and looks for such jobs
in a maintenance pass every ten minutes. Here a running job's heartbeat is refreshed by a thread every few
seconds and expires ``abandoned_after`` seconds after the worker stops refreshing it; maintenance runs
every ``maintenance_interval`` seconds (idle workers wake up for it). RQ's own cleanup then re-queues the
abandoned job (its ``Retry``), so another worker processes it within about the sum of the two.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, cast

from rq import SimpleWorker
from rq.executions import Execution
from rq.job import Job
from rq.queue import Queue
from rq.registry import StartedJobRegistry
from rq.utils import as_text
from rq.worker import WorkerStatus

from greenq.core.deadletters import RetentionSchedule
from greenq.workers.jobs import WorkerContext
from greenq.workers.rq_job import GreenqJob


class GreenqWorker(SimpleWorker):
    """SimpleWorker (jobs run in-process, each given ``context``) plus a heartbeat thread and short
    maintenance cycles."""

    def __init__(
        self,
        queues: list[Queue],
        *,
        context: WorkerContext,
        abandoned_after: int,
        maintenance_interval: int,
        dead_letter_retention_days: int = 0,
        sweep: Callable[[], object] | None = None,
        **kwargs: Any,
    ) -> None:
        # An idle worker blocks in dequeue for worker_ttl - 15 s: wake up in time for maintenance.
        kwargs.setdefault("worker_ttl", max(30, maintenance_interval + 15))
        super().__init__(queues, maintenance_interval=maintenance_interval, job_class=GreenqJob, **kwargs)
        self.context = context
        self.abandoned_after = abandoned_after
        self.stop_requested = False
        self._retention = RetentionSchedule(dead_letter_retention_days)
        self._sweep = sweep

    def run_maintenance_tasks(self) -> None:
        """RQ's registry cleanup (re-queues abandoned jobs), plus the hourly dead-letter retention trim."""
        super().run_maintenance_tasks()  # type: ignore[no-untyped-call]
        if self._sweep is not None:  # no partition with entries is left without a drain
            self._sweep()
        self._retention.run_if_due(self.connection)

    def request_stop(self, signum: int, frame: Any) -> None:
        """SIGTERM/SIGINT: remember it, so the supervisor does not restart a worker asked to stop."""
        self.stop_requested = True
        super().request_stop(signum, frame)  # type: ignore[no-untyped-call]

    def get_heartbeat_ttl(self, job: Job, working_time: float = 0.0) -> int:
        """How long a running job stays 'alive' without a fresh heartbeat."""
        return self.abandoned_after

    def handle_job_success(
        self, job: Job, queue: Queue, started_job_registry: StartedJobRegistry, execution: Execution
    ) -> None:
        """RQ's success step, after forgetting executions of dead workers that RQ would fail to load.

        RQ keeps a dead execution's id in the job's execution registry for 60 s after its record expired;
        deleting the finished job (``result_ttl=0``) loads every listed execution and raised "Execution ...
        not found" for a job recovered within that minute: the job was retried although it had committed.
        """
        _forget_dead_executions(job)
        super().handle_job_success(job, queue, started_job_registry, execution)

    def perform_job(self, job: Job, queue: Queue, execution: Execution) -> bool:
        """RQ's perform_job, with this worker's context handed to the job (its function's first argument)."""
        if isinstance(job, GreenqJob):  # always: this worker dequeues GreenqJobs
            job.context = self.context
        return bool(super().perform_job(job, queue, execution))

    def execute_job(self, job: Job, queue: Queue) -> None:
        """Run the job in this process while a thread keeps its heartbeat fresh."""
        execution = self.prepare_execution(job)
        done = threading.Event()
        beat = threading.Thread(
            target=self._beat, args=(job, execution, done), name="greenq-heartbeat", daemon=True
        )
        beat.start()
        try:
            self.perform_job(job, queue, execution)
        finally:
            done.set()
            beat.join()
        self.set_state(WorkerStatus.IDLE)

    def _beat(self, job: Job, execution: Execution, done: threading.Event) -> None:
        interval = max(1.0, self.abandoned_after / 3)
        while not done.wait(interval):
            try:
                self.maintain_heartbeats(job, execution)
            except Exception:  # a missed beat only risks an early, deduplicated re-run; never kill the job
                self.log.warning("could not refresh the heartbeat of job %s", job.id, exc_info=True)


def _forget_dead_executions(job: Job) -> None:
    """Drop ids from the job's execution registry whose execution record no longer exists."""
    registry = job.execution_registry
    listed = [as_text(id_) for id_ in cast(list[bytes], job.connection.zrange(registry.key, 0, -1))]
    dead = [
        execution_id
        for execution_id in listed
        if not job.connection.exists(Execution(execution_id, job.id, job.connection).key)
    ]
    if dead:
        job.connection.zrem(registry.key, *dead)
