"""Phase 2, inside the commit: from a read notification and its claim state to a Decision and its writes.

Handlers run here, each with its own write buffer; a buffer is kept only if its handler returned. Every
write greenq itself needs (a dead letter, a retry job, the claim) is recorded on the decision too, so the
batch's one MULTI/EXEC (``greenq.workers.commit``) commits all of it or nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace

from redis import Redis
from redis.client import Pipeline

from greenq.core.contract import Envelope, NotificationQueue
from greenq.core.deadletters.store import DeadLetter, DeadLetterStore
from greenq.core.logs import fields
from greenq.core.outcomes import Outcome
from greenq.core.settings import WorkerSettings
from greenq.workers.claims import Claimed
from greenq.workers.handlers.replies import is_bookkeeping
from greenq.workers.handling import HandlerRun, run_handlers
from greenq.workers.reporting import notification_ids
from greenq.workers.results import (
    AlreadyCommitted,
    Decided,
    Decision,
    QueuedWrite,
    Read,
    Rejected,
    Retry,
    Valid,
    Writes,
    own_write,
)
from greenq.workers.router import Router
from greenq.workers.state import ChatStates

log = logging.getLogger("greenq.worker")


class Decider:
    """Claims, routes and handles one notification at a time; owns nothing that outlives a decision."""

    def __init__(self, settings: WorkerSettings, redis: Redis, router: Router) -> None:
        self._settings = settings
        self._redis = redis
        self._router = router
        self._dead_letters = DeadLetterStore(redis)
        self._queue = NotificationQueue(redis)
        self._handler_log = logging.getLogger("greenq.handlers")

    def decide(self, read: Read, claimed: Claimed, states: ChatStates, *, in_place: bool = False) -> Decision:
        """``in_place`` (ordered mode): a retry is not re-queued here; the caller parks it."""
        if claimed is Claimed.DONE:
            return AlreadyCommitted()
        states.begin()
        try:
            decision = self._decide_unclaimed(read, claimed, states, in_place)
        except Exception as error:  # greenq's or the router's bug: keep the notification for a replay
            states.rollback()  # its handlers' state changes are dropped with their writes
            log.exception("processing a notification raised", extra=fields(**notification_ids(read.data)))
            reasons = (f"processing raised {type(error).__name__}: {error}",)
            decision = self._dead_lettered(read, Outcome.FAILED, reasons, read.envelope)
        claim = read.claim.command(claimed, self._settings.dedup_window_seconds)
        return decision.plus((own_write(*claim),))

    def _decide_unclaimed(
        self, read: Read, claimed: Claimed, states: ChatStates, in_place: bool
    ) -> Decided | Retry:
        if claimed is Claimed.RESEND:
            return Decided(outcome=Outcome.DUPLICATE, envelope=read.envelope)
        if isinstance(read, Rejected):
            return self._dead_lettered(read, read.outcome, read.reasons, read.envelope)
        routes = self._router.match(read.notification, states.name_of(read.state_key))
        pending = read.envelope.pending_handlers
        if pending is not None:
            routes = [route for route in routes if route.name in pending]
        if not routes:
            return Decided(outcome=Outcome.UNHANDLED, envelope=read.envelope)
        run = run_handlers(read, routes, self._redis, self._settings, self._handler_log, states=states)
        if not run.failures:
            # Only greenq's own bookkeeping took it: the user's router has no route for it.
            handled = any(not is_bookkeeping(route) for route in routes)
            outcome = Outcome.HANDLED if handled else Outcome.UNHANDLED
            return Decided(outcome=outcome, envelope=read.envelope, writes=run.writes)
        return self._after_failures(read, run, in_place)

    def _after_failures(self, read: Valid, run: HandlerRun, in_place: bool) -> Decided | Retry:
        """A retry while attempts are left, else a ``failed`` dead letter that a replay re-runs."""
        envelope, failed = read.envelope, run.failed_names
        reasons = tuple(f"handler {failure.name} raised {failure.error}" for failure in run.failures)
        if envelope.attempt > self._settings.max_retries:
            # A replay of this dead letter re-runs only the handlers that failed.
            letter_envelope = replace(envelope, pending_handlers=failed)
            return self._dead_lettered(read, Outcome.FAILED, reasons, letter_envelope, run.writes)
        retry = Retry(
            next_attempt=envelope.next_attempt(failed),
            retry_in=self._settings.backoff_for(envelope.attempt),
            reasons=reasons,
            writes=run.writes,
        )
        # Ordered mode: the caller parks it at the head of its chat.
        return retry if in_place else self._requeued(retry)

    def _requeued(self, retry: Retry) -> Retry:
        """``retry`` with the delayed job that runs its next attempt."""

        def enqueue(pipe: Pipeline) -> None:
            self._queue.enqueue([retry.next_attempt], retry.retry_in, pipe)

        return retry.plus(recorded(self._redis, enqueue))

    def _dead_lettered(
        self,
        read: Read,
        outcome: Outcome,
        reasons: tuple[str, ...],
        envelope: Envelope,
        writes: Writes = (),
    ) -> Decided:
        letter = letter_for(read, outcome, reasons, envelope)
        kept = writes + recorded(self._redis, lambda pipe: self._dead_letters.add_in(pipe, letter))
        return Decided(outcome=outcome, envelope=envelope, reasons=reasons, writes=kept)


def recorded(redis: Redis, write: Callable[[Pipeline], object]) -> Writes:
    """greenq's own writes as ``write`` makes them on a pipeline that only records (never sent)."""
    recorder = redis.pipeline(transaction=True)
    recorder.multi()  # RQ's enqueue(pipeline=...) expects an open transaction
    write(recorder)
    return tuple(QueuedWrite(None, args, options) for args, options in recorder.command_stack)


def letter_for(read: Read, outcome: Outcome, reasons: tuple[str, ...], envelope: Envelope) -> DeadLetter:
    """The dead letter of ``read`` (``envelope`` may name the handlers a replay re-runs)."""
    return DeadLetter(
        outcome=outcome,
        reasons=reasons,
        envelope=envelope,
        type_webhook=read.type_webhook,
        id_instance=notification_ids(read.data).get("idInstance"),
    )
