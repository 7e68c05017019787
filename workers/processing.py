"""Turning one job's batch of envelopes into per-notification outcomes, committed in one transaction.

Each notification is parsed, validated, deduplicated, routed and handled on its own: a bad one never fails
or repeats its neighbours. Everything a batch writes to Redis (handlers' buffered writes, dead letters,
retry jobs, dedup markers, outcome counts) is queued on one MULTI/EXEC pipeline and committed together,
in one round trip, before any outcome is counted or logged. A worker killed mid-batch therefore commits
nothing, and RQ re-runs the job (see ``JOB_RETRIES``).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import orjson
from redis import Redis
from redis.client import Pipeline

from greenq import keys
from greenq.contract import Envelope, EnvelopeError
from greenq.jobqueue import NotificationQueue
from greenq.logs import fields
from greenq.settings import WorkerSettings
from workers.body import body_preview, read_body
from workers.context import HandlerContext
from workers.deadletter import DeadLetter, DeadLetterStore
from workers.dedup import Deduplicator, identity
from workers.metrics import WorkerMetrics
from workers.notification import Notification
from workers.outcomes import Outcome
from workers.router import Route, Router
from workers.validation import NotificationValidator, Verdict

log = logging.getLogger("greenq.worker")

#: What happened to one notification: a final outcome, or None when it went back for a retry.
Result = Outcome | None


@dataclass
class Item:
    """One notification on its way through a batch."""

    envelope: Envelope
    started: float
    data: Any = None
    verdict: Verdict | None = None
    identity: str | None = None
    reasons: tuple[str, ...] = ()
    result: Result = None
    retry_in: float | None = None

    @property
    def type_webhook(self) -> str | None:
        if self.verdict is not None:
            return self.verdict.type_webhook
        value = self.data.get("typeWebhook") if isinstance(self.data, dict) else None
        return value if isinstance(value, str) else None


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
        self._dedup = Deduplicator(redis, settings.dedup_window_seconds)
        self._handler_log = logging.getLogger("greenq.handlers")

    def process_batch(self, batch: object) -> dict[str, int]:
        """Outcome counts for the batch (``retrying`` for notifications sent back)."""
        items = self.process_items(batch if isinstance(batch, list) else [batch])
        return dict(Counter(item.result.value if item.result else "retrying" for item in items))

    def process(self, envelope: Envelope) -> Result:
        """One notification as a batch of one (tools and benchmarks)."""
        return self.process_items([envelope.to_wire()])[0].result

    def process_items(self, wires: Sequence[object]) -> list[Item]:
        """The batch's items after their outcomes are committed, counted and logged."""
        self._metrics.batch_size.observe(len(wires))
        items = [self._read(wire) for wire in wires]
        self._mark_duplicates(items)
        writes = self._redis.pipeline(transaction=True)
        writes.multi()  # explicit MULTI up front: RQ's enqueue(pipeline=...) expects an open transaction
        for item in items:
            self._decide(item, writes)
        self._count_outcomes(items, writes)
        writes.execute()
        for item in items:
            self._report(item)
        return items

    # Phase 1: parse and validate, no I/O.

    def _read(self, wire: object) -> Item:
        started = time.perf_counter()
        try:
            envelope = Envelope.from_wire(wire)
        except EnvelopeError as error:
            # Not ours to parse: keep what we got as the body, so nothing disappears.
            kept = Envelope(body=orjson.dumps(wire, default=str).decode(), source="replay")
            return Item(kept, started, reasons=(f"malformed envelope: {error}",), result=Outcome.INVALID)
        item = Item(envelope, started)
        reading = read_body(envelope)
        if reading.outcome is not None:  # not a JSON object, or too large to parse: dead letter
            item.reasons, item.result = (reading.reason,), reading.outcome
            return item
        item.data = reading.data
        item.verdict = self._validator.validate(item.data)
        if item.verdict.status != "valid":
            item.reasons = item.verdict.errors
            item.result = Outcome.INVALID if item.verdict.status == "invalid" else Outcome.UNKNOWN_TYPE
        else:
            item.identity = identity(item.data)
        return item

    # Phase 2: one round trip to find resends.

    def _mark_duplicates(self, items: list[Item]) -> None:
        """First-time notifications whose identity was already processed (or repeats within the batch)."""
        if not self._dedup.enabled:
            return
        candidates = [item for item in items if item.identity and _is_first_delivery(item.envelope)]
        seen = self._dedup.seen([item.identity for item in candidates if item.identity])
        in_batch: set[str] = set()
        for item, already in zip(candidates, seen, strict=True):
            assert item.identity is not None
            if already or item.identity in in_batch:
                item.result = Outcome.DUPLICATE
            in_batch.add(item.identity)

    # Phase 3: route and handle, queueing every write on the batch's transaction.

    def _decide(self, item: Item, writes: Pipeline) -> None:
        if item.result is Outcome.DUPLICATE:
            return
        if item.result is not None:  # invalid or unknown type
            self._dead_letter(item, writes)
            return
        # A valid verdict always names its type, and every valid item got an identity in phase 1.
        assert item.verdict is not None
        assert item.verdict.type_webhook is not None
        assert item.identity is not None
        self._dedup.mark_in(writes, item.identity)
        notification = Notification(
            item.data, item.verdict.type_webhook, item.verdict.type_message, item.envelope
        )
        routes = self._routes_for(notification)
        if not routes:
            item.result = Outcome.UNHANDLED
            return
        failed = self._run_handlers(notification, routes, writes)
        if not failed:
            item.result = Outcome.HANDLED
        elif item.envelope.attempt <= self._settings.max_retries:
            item.retry_in = self._settings.backoff_for(item.envelope.attempt)
            self._queue.enqueue([item.envelope.next_attempt(tuple(failed))], item.retry_in, pipeline=writes)
            item.reasons = tuple(f"handler {name} raised {error}" for name, error in failed.items())
        else:
            item.result = Outcome.FAILED
            item.reasons = tuple(f"handler {name} raised {error}" for name, error in failed.items())
            # A replay of this dead letter re-runs only the handlers that failed.
            item.envelope = replace(item.envelope, pending_handlers=tuple(failed))
            self._dead_letter(item, writes)

    def _routes_for(self, notification: Notification) -> list[Route]:
        routes = self._router.match(notification)
        pending = notification.envelope.pending_handlers
        return routes if pending is None else [route for route in routes if route.name in pending]

    def _run_handlers(
        self, notification: Notification, routes: list[Route], writes: Pipeline
    ) -> dict[str, str]:
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
                        **_identity(notification.data),
                        handler=route.name,
                        attempt=notification.envelope.attempt,
                    ),
                )
                continue
            for args, options in buffer.command_stack:
                writes.pipeline_execute_command(*args, **options)
        return failed

    def _dead_letter(self, item: Item, writes: Pipeline) -> None:
        assert item.result is not None
        letter = DeadLetter(
            outcome=item.result,
            reasons=item.reasons,
            envelope=item.envelope,
            type_webhook=item.type_webhook,
            id_instance=_identity(item.data).get("idInstance"),
        )
        self._dead_letters.add_in(writes, letter)

    def _count_outcomes(self, items: list[Item], writes: Pipeline) -> None:
        counts = Counter(item.result.value for item in items if item.result is not None)
        for outcome, count in counts.items():
            writes.hincrby(keys.OUTCOME_COUNTS, outcome, count)

    # Phase 4: after the commit, count and log.

    def _report(self, item: Item) -> None:
        seconds = time.perf_counter() - item.started
        type_webhook = item.type_webhook
        if item.result is None:
            self._report_retry(item, type_webhook)
            return
        outcome = item.result
        self._metrics.count(type_webhook, outcome, seconds)
        if not log.isEnabledFor(outcome.log_level):
            return
        record: dict[str, Any] = {
            **_identity(item.data),
            "typeWebhook": type_webhook,
            "outcome": outcome.value,
            "request_id": item.envelope.request_id,
            "received_at": item.envelope.received_at,
            "source": item.envelope.source,
            "attempt": item.envelope.attempt,
        }
        if item.verdict is not None and item.verdict.type_message is not None:
            record["typeMessage"] = item.verdict.type_message
        if item.reasons:
            record["errors"] = list(item.reasons)
        record["notification"] = item.data if item.data is not None else body_preview(item.envelope)
        log.log(outcome.log_level, f"notification {outcome.value}", extra=fields(**record))

    def _report_retry(self, item: Item, type_webhook: str | None) -> None:
        self._metrics.retries.labels(type_webhook=self._metrics.type_label(type_webhook)).inc()
        log.warning(
            "notification sent back for retry",
            extra=fields(
                **_identity(item.data),
                typeWebhook=type_webhook,
                outcome="retrying",
                attempt=item.envelope.attempt,
                retry_in_seconds=item.retry_in,
                errors=list(item.reasons),
                request_id=item.envelope.request_id,
            ),
        )


def _is_first_delivery(envelope: Envelope) -> bool:
    """Retries and operator replays re-run a notification on purpose; only first deliveries are checked."""
    return envelope.attempt == 1 and envelope.source != "replay"


def _identity(data: object) -> dict[str, Any]:
    """idInstance, idMessage and typeMessage of a notification, where present and readable."""
    if not isinstance(data, dict):
        return {}
    found: dict[str, Any] = {}
    instance = data.get("instanceData")
    if isinstance(instance, dict) and isinstance(instance.get("idInstance"), int):
        found["idInstance"] = instance["idInstance"]
    if isinstance(data.get("idMessage"), str):
        found["idMessage"] = data["idMessage"]
    message = data.get("messageData")
    if isinstance(message, dict) and isinstance(message.get("typeMessage"), str):
        found["typeMessage"] = message["typeMessage"]
    return found
