"""Turning one job's batch of envelopes into per-notification outcomes, committed exactly once.

Each notification is read, validated, claimed, routed and handled on its own: a bad one (even a body too
deep to re-encode) never fails or repeats its neighbours. Everything a batch writes to Redis (handlers'
buffered writes, dead letters, retry jobs, claims, outcome counts) is committed together in one MULTI/EXEC
(``greenq.workers.commit``) before any outcome is counted or logged. A worker killed mid-batch commits nothing
and RQ re-runs the job; a job re-run after its commit finds its claims and does nothing
(``greenq.workers.claims``).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from functools import partial

import orjson
from redis import Redis
from redis.client import Pipeline
from redis.exceptions import RedisError
from rq import get_current_job

from greenq.core import keys
from greenq.core.contract import Envelope, EnvelopeError, NotificationQueue
from greenq.core.deadletters.store import DeadLetter, DeadLetterStore
from greenq.core.logs import fields
from greenq.core.notification import Notification
from greenq.core.outcomes import Outcome
from greenq.core.settings import WorkerSettings
from greenq.workers.body import read_body
from greenq.workers.claims import Claimed, claim_for
from greenq.workers.commit import WriteFailure, commit_batch
from greenq.workers.context import HandlerContext
from greenq.workers.dedup import identity
from greenq.workers.items import Item, Result
from greenq.workers.metrics import WorkerMetrics
from greenq.workers.reporting import Reporter, notification_ids
from greenq.workers.router import Route, Router
from greenq.workers.validation import NotificationValidator

log = logging.getLogger("greenq.worker")

__all__ = ["Around", "Item", "Processor", "Result"]

#: Wraps one item's decision (ordered mode): called with the item and the processor's own decision.
Around = Callable[..., None]

#: Deeper bodies are invalid: GREEN API's are a handful of levels deep, and orjson cannot re-encode (for a
#: handler or a log line) what is nested more than ~250 levels.
MAX_NESTING = 64


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
        self._settings = settings
        self._redis = redis
        self._router = router
        self._validator = validator
        self._metrics = metrics
        self._dead_letters = DeadLetterStore(redis)
        self._queue = NotificationQueue(redis)
        self._reporter = Reporter(metrics)
        self._handler_log = logging.getLogger("greenq.handlers")

    def process_batch(self, batch: object) -> dict[str, int]:
        """Outcome counts for the batch (``retrying`` for notifications sent back)."""
        items = self.process_items(batch if isinstance(batch, list) else [batch])
        return dict(Counter(_summary(item) for item in items))

    def process(self, envelope: Envelope) -> Result:
        """One notification as a batch of one (tools and benchmarks)."""
        return self.process_items([envelope.to_wire()])[0].result

    def process_items(self, wires: Sequence[object]) -> list[Item]:
        """The batch's items after their outcomes are committed, counted and logged."""
        job = get_current_job()
        origin = job.id if job is not None else f"{time.time_ns()}"
        read = self.read_items(wires, [f"{origin}:{index}" for index in range(len(wires))])
        return self.commit_items(read)

    def read_items(self, wires: Sequence[object], origins: Sequence[str]) -> list[Item]:
        """Phase 1 for a batch: each wire parsed and validated (``origins`` name them in dead letters)."""
        self._metrics.batch_size.observe(len(wires))
        return [self._read(wire, origin) for wire, origin in zip(wires, origins, strict=True)]

    def commit_items(self, read: list[Item], around: Around | None = None) -> list[Item]:
        """Phases 2 and 3: decide and commit; ``around`` (ordered mode) wraps each item's decision."""
        decide = self._decide if around is None else partial(around, decide=self._decide)
        items, refused = commit_batch(self._redis, read, decide)
        for failure in refused:
            self._record_refused(failure)
        for item in items:
            self._reporter.report(item)
        return items

    # Phase 1: parse and validate, no I/O. Anything unexpected makes the item invalid, never the batch.

    def _read(self, wire: object, origin: str) -> Item:
        started = time.perf_counter()
        try:
            envelope = Envelope.from_wire(wire)
        except EnvelopeError as error:
            # Not ours to parse: keep what we got as the body, so nothing disappears.
            kept = Envelope(body=_text_of(wire), source="replay", request_id=origin)
            return self._unreadable(kept, started, f"malformed envelope: {error}")
        try:
            return self._validate(envelope, started)
        except Exception as error:  # e.g. RecursionError explaining a pathological body
            log.exception("notification could not be validated", extra=fields(origin=origin))
            return self._unreadable(envelope, started, f"could not be validated: {type(error).__name__}")

    def _validate(self, envelope: Envelope, started: float) -> Item:
        reading = read_body(envelope)
        if reading.outcome is not None:  # not a JSON object, or too large to parse: dead letter
            return self._unreadable(envelope, started, reading.reason, reading.outcome)
        data = reading.data
        if _nested_deeper_than(envelope.body, data, MAX_NESTING):
            item = self._unreadable(envelope, started, f"body is nested deeper than {MAX_NESTING} levels")
            item.data = _top_level_scalars(data)
            return item
        verdict = self._validator.validate(data)
        valid = verdict.status == "valid" and isinstance(data, dict)
        content = identity(data, envelope.body) if valid else None
        item = Item(envelope, started, claim_for(envelope, content, self._settings.dedup_window_seconds))
        item.data, item.verdict = data, verdict
        if verdict.status != "valid":
            item.reasons = verdict.errors
            item.result = Outcome.INVALID if verdict.status == "invalid" else Outcome.UNKNOWN_TYPE
        return item

    def _unreadable(
        self, envelope: Envelope, started: float, reason: str, outcome: Outcome = Outcome.INVALID
    ) -> Item:
        claim = claim_for(envelope, None, self._settings.dedup_window_seconds)
        return Item(envelope, started, claim, reasons=(reason,), result=outcome)

    # Phase 2 (inside the commit): claim, route and handle, queueing every write on the item.

    def _decide(self, item: Item) -> None:
        if item.already_committed:
            return
        try:
            self._decide_claimed(item)
        except Exception as error:  # greenq's or the router's bug: keep the notification for a replay
            log.exception("processing a notification raised", extra=fields(**notification_ids(item.data)))
            item.writes.clear()
            item.result, item.reasons = (
                Outcome.FAILED,
                (f"processing raised {type(error).__name__}: {error}",),
            )
            self._dead_letter(item)
        item.queue(None, item.claim.command(item.claimed, self._settings.dedup_window_seconds), {})

    def _decide_claimed(self, item: Item) -> None:
        if item.claimed is Claimed.RESEND:
            item.result = Outcome.DUPLICATE
            return
        if item.result is not None:  # invalid or unknown type
            self._dead_letter(item)
            return
        # A valid verdict always names its type.
        assert item.verdict is not None
        assert item.verdict.type_webhook is not None
        notification = Notification(
            item.data, item.verdict.type_webhook, item.verdict.type_message, item.envelope
        )
        routes = self._routes_for(notification)
        if not routes:
            item.result = Outcome.UNHANDLED
            return
        failed = self._run_handlers(item, notification, routes)
        if not failed:
            item.result = Outcome.HANDLED
            return
        item.reasons = tuple(f"handler {name} raised {error}" for name, error in failed.items())
        if item.envelope.attempt <= self._settings.max_retries:
            item.retry_in = self._settings.backoff_for(item.envelope.attempt)
            if item.in_place_retry:  # ordered mode: the caller parks it at the head of its chat
                item.retry_envelope = item.envelope.next_attempt(tuple(failed))
                return
            with self._recording(item) as recorder:
                self._queue.enqueue(
                    [item.envelope.next_attempt(tuple(failed))], item.retry_in, pipeline=recorder
                )
            return
        item.result = Outcome.FAILED
        # A replay of this dead letter re-runs only the handlers that failed.
        item.envelope = replace(item.envelope, pending_handlers=tuple(failed))
        self._dead_letter(item)

    def _routes_for(self, notification: Notification) -> list[Route]:
        routes = self._router.match(notification)
        pending = notification.envelope.pending_handlers
        return routes if pending is None else [route for route in routes if route.name in pending]

    def _run_handlers(self, item: Item, notification: Notification, routes: list[Route]) -> dict[str, str]:
        """Run each handler with its own write buffer; keep the buffer only if the handler returned."""
        failed: dict[str, str] = {}
        for route in routes:
            buffer = self._redis.pipeline(transaction=False)
            context = HandlerContext(self._redis, buffer, self._settings, self._handler_log)
            try:
                route.handler(notification, context)
            except Exception as error:  # a handler's bug must not take the batch down; it is retried
                failed[route.name] = f"{type(error).__name__}: {str(error)[:200]}"
                log.warning(
                    "handler raised",
                    exc_info=True,
                    extra=fields(
                        **notification_ids(notification.data),
                        handler=route.name,
                        attempt=notification.envelope.attempt,
                    ),
                )
                continue
            for args, options in buffer.command_stack:
                item.queue(route.name, args, options)
        return failed

    def _dead_letter(self, item: Item) -> None:
        with self._recording(item) as recorder:
            self._dead_letters.add_in(recorder, self._letter_for(item))

    @contextmanager
    def _recording(self, item: Item) -> Iterator[Pipeline]:
        """A pipeline that only records: greenq's own writes for ``item``, queued on its commit."""
        recorder = self._redis.pipeline(transaction=True)
        recorder.multi()  # RQ's enqueue(pipeline=...) expects an open transaction
        yield recorder
        for args, options in recorder.command_stack:
            item.queue(None, args, options)

    def _letter_for(self, item: Item) -> DeadLetter:
        assert item.result is not None
        return DeadLetter(
            outcome=item.result,
            reasons=item.reasons,
            envelope=item.envelope,
            type_webhook=item.type_webhook,
            id_instance=notification_ids(item.data).get("idInstance"),
        )

    # Phase 3: after the commit, an item whose writes Redis partly refused becomes a `failed` dead letter.

    def _record_refused(self, failure: WriteFailure) -> None:
        """The rest of its writes were applied, so a blind retry could apply them twice: a human decides."""
        item = failure.item
        counted = item.result
        handlers = tuple(sorted({owner for owner, _ in failure.errors if owner is not None}))
        item.reasons = tuple(
            f"Redis refused a write of {owner or 'greenq'} inside the commit: {type(error).__name__}:"
            f" {error}; the item's other writes were applied"
            for owner, error in failure.errors
        )
        item.result, item.retry_in = Outcome.FAILED, None
        if handlers:
            item.envelope = replace(item.envelope, pending_handlers=handlers)
        try:
            with self._redis.pipeline(transaction=True) as pipe:
                if counted is not None:
                    pipe.hincrby(keys.OUTCOME_COUNTS, counted.value, -1)
                pipe.hincrby(keys.OUTCOME_COUNTS, Outcome.FAILED.value, 1)
                self._dead_letters.add_in(pipe, self._letter_for(item))
                pipe.execute()
        except RedisError:
            log.exception(
                "could not dead-letter a partly refused commit",
                extra=fields(**notification_ids(item.data), errors=list(item.reasons)),
            )


def _summary(item: Item) -> str:
    if item.already_committed:
        return "already_committed"
    return item.result.value if item.result is not None else "retrying"


def _text_of(wire: object) -> str:
    try:
        return orjson.dumps(wire, default=str).decode()
    except TypeError:
        return f"<unencodable {type(wire).__name__}>"


def _nested_deeper_than(body: str, data: object, limit: int) -> bool:
    """True if ``data`` nests containers deeper than ``limit`` (a cheap count rules most bodies out)."""
    if body.count("[") + body.count("{") <= limit:
        return False
    stack: list[tuple[object, int]] = [(data, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def _top_level_scalars(data: object) -> object:
    if not isinstance(data, dict):
        return None
    return {key: value for key, value in data.items() if not isinstance(value, dict | list)}
