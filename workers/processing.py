"""Turning one job's batch of envelopes into per-notification outcomes, committed exactly once.

The phases, each a function from the previous one's immutable values to the next (``greenq.workers.results``):

1. read (``greenq.workers.reading``): each wire parsed and validated on its own, without I/O, so a bad one
   (even a body too deep to re-encode) never fails or repeats its neighbours;
2. decide (``greenq.workers.deciding``), inside the commit: claimed, routed and handled, every write it needs
   carried by its Decision;
3. commit (``greenq.workers.commit``): every decision's writes (handlers' buffered writes, dead letters,
   retry jobs, claims, outcome counts) in one MULTI/EXEC, before any outcome is counted or logged;
4. report (``greenq.workers.refusals`` for writes EXEC refused, then ``greenq.workers.reporting``).

A worker killed mid-batch commits nothing and RQ re-runs the job; a job re-run after its commit finds its
claims and does nothing (``greenq.workers.claims``).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

from redis import Redis
from redis.client import Pipeline
from rq import get_current_job

from greenq.core.settings import WorkerSettings
from greenq.workers.claims import Claimed
from greenq.workers.commit import BatchWrites, Commit, Decide, DecideInBatch, commit_batch, commit_fresh
from greenq.workers.deciding import Decider
from greenq.workers.handlers.replies import with_reply_statuses
from greenq.workers.metrics import WorkerMetrics
from greenq.workers.reading import Reader
from greenq.workers.refusals import record_refused
from greenq.workers.reporting import Reporter
from greenq.workers.results import Decision, Read, Settled
from greenq.workers.router import Router
from greenq.workers.state import ChatStates
from greenq.workers.validation import NotificationValidator

__all__ = ["OrderedBatch", "Ordering", "Processor", "ReadOrdered"]

#: Ordered mode: decides one notification in its chat's order, given the processor's own decision.
Ordering = Callable[[Read, Claimed, Decide], Decision]


@dataclass(frozen=True, slots=True)
class OrderedBatch:
    """Ordered mode: one commit attempt's wires as the drain read them, and how their chats order them."""

    wires: Sequence[object]
    origins: Sequence[str]
    ordering: Ordering
    batch_writes: BatchWrites  #: asked for once every notification is decided


#: Ordered mode: reads a commit attempt's batch on the attempt's connection (``commit.ReadAttempt``).
ReadOrdered = Callable[[Pipeline], OrderedBatch]


class Processor:
    """Owns the per-process pieces (validator, router, stores) and applies them to batches."""

    def __init__(
        self,
        settings: WorkerSettings,
        redis: Redis,
        router: Router,
        validator: NotificationValidator,
        metrics: WorkerMetrics,
    ) -> None:
        self._redis = redis
        self._metrics = metrics
        router = with_reply_statuses(router)  # every worker records its replies' statuses
        self._reader = Reader(
            validator, settings.dedup_window_seconds, settings.partitions, router.chat_state
        )
        self._decider = Decider(settings, redis, router)
        self._reporter = Reporter(metrics)

    def process_batch(self, batch: object) -> dict[str, int]:
        """Outcome counts for the batch (``retrying`` for notifications sent back)."""
        settled = self.process_items(batch if isinstance(batch, list) else [batch])
        return dict(Counter(one.label for one in settled))

    def process_items(self, wires: Sequence[object]) -> list[Settled]:
        """The batch's notifications after their outcomes are committed, counted and logged."""
        job = get_current_job()
        origin = job.id if job is not None else f"{time.time_ns()}"
        reads = self.read_items(wires, [f"{origin}:{index}" for index in range(len(wires))])
        return self.commit_items(reads)

    def read_items(self, wires: Sequence[object], origins: Sequence[str]) -> list[Read]:
        """Phase 1 for a batch (``origins`` name each wire in its batch and in dead letters)."""
        self._metrics.batch_size.observe(len(wires))
        return self._read(wires, origins)

    def commit_items(self, reads: Sequence[Read]) -> list[Settled]:
        """Phases 2 to 4."""
        return self._reported(commit_batch(self._redis, reads, self._decider.decide))

    def commit_ordered(self, read: ReadOrdered) -> list[Settled]:
        """Phases 1 to 4 in ordered mode: each commit attempt reads its batch through ``read`` (a retried
        attempt decides from the partition as it is now); the batch's ordering parks retries in place."""
        decide: DecideInBatch = partial(self._decider.decide, in_place=True)

        def attempt(pipe: Pipeline) -> tuple[list[Read], DecideInBatch, BatchWrites]:
            batch = read(pipe)
            return (
                self._read(batch.wires, batch.origins),
                _in_order(batch.ordering, decide),
                batch.batch_writes,
            )

        commit = commit_fresh(self._redis, attempt)
        if commit.settled:
            self._metrics.batch_size.observe(len(commit.settled))
        return self._reported(commit)

    def _read(self, wires: Sequence[object], origins: Sequence[str]) -> list[Read]:
        return [self._reader.read(wire, origin) for wire, origin in zip(wires, origins, strict=True)]

    def _reported(self, commit: Commit) -> list[Settled]:
        # A refused notification is reported as what it became: keyed by its Settled (the same objects).
        corrected = {id(failure.settled): record_refused(self._redis, failure) for failure in commit.refused}
        settled = [corrected.get(id(one), one) for one in commit.settled]
        self._reporter.report_all(settled)
        return settled


def _in_order(ordering: Ordering, decide: DecideInBatch) -> DecideInBatch:
    def in_order(read: Read, claimed: Claimed, states: ChatStates) -> Decision:
        return ordering(read, claimed, lambda one, its_claim: decide(one, its_claim, states))

    return in_order
