"""Turning one job's batch of envelopes into per-notification outcomes.

Each notification is parsed, validated, routed and handled on its own: a bad one never fails or repeats its
neighbours. Every notification ends in exactly one final outcome (counted, logged at its level, stored where
the outcome says) or is sent back for a retry of just the handlers that failed.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import orjson

from greenq.contract import Envelope, EnvelopeError
from greenq.jobqueue import NotificationQueue
from greenq.logs import fields
from greenq.settings import WorkerSettings
from workers.context import HandlerContext
from workers.deadletter import DeadLetter, DeadLetterStore
from workers.metrics import WorkerMetrics
from workers.notification import Notification, unwrap
from workers.outcomes import Outcome
from workers.router import Route, Router
from workers.validation import NotificationValidator

log = logging.getLogger("greenq.worker")

#: Result of one notification: a final outcome, or None when it went back for a retry.
Result = Outcome | None


@dataclass(frozen=True)
class _Parsed:
    """What could be read from an envelope before routing."""

    data: Any
    type_webhook: str | None
    reasons: tuple[str, ...] = ()


class Processor:
    """Owns the per-process pieces (validator, router, stores) and applies them to batches."""

    def __init__(
        self,
        settings: WorkerSettings,
        context: HandlerContext,
        router: Router,
        validator: NotificationValidator,
        metrics: WorkerMetrics,
    ) -> None:
        self._settings = settings
        self._context = context
        self._router = router
        self._validator = validator
        self._metrics = metrics
        self._dead_letters = DeadLetterStore(context.redis)
        self._queue = NotificationQueue(context.redis)

    def process_batch(self, batch: object) -> dict[str, int]:
        """Outcome counts for the batch (``retrying`` for notifications sent back)."""
        items = batch if isinstance(batch, list) else [batch]
        self._metrics.batch_size.observe(len(items))
        counts: Counter[str] = Counter()
        for wire in items:
            result = self.process_wire(wire)
            counts[result.value if result else "retrying"] += 1
        return dict(counts)

    def process_wire(self, wire: object) -> Result:
        started = time.perf_counter()
        try:
            envelope = Envelope.from_wire(wire)
        except EnvelopeError as error:
            # Not ours to parse: keep what we got, so nothing disappears.
            envelope = Envelope(body=orjson.dumps(wire, default=str).decode(), source="replay")
            return self._finish(envelope, _Parsed(None, None, (f"malformed envelope: {error}",)), started)
        return self.process(envelope, started)

    def process(self, envelope: Envelope, started: float | None = None) -> Result:
        started = time.perf_counter() if started is None else started
        parsed = _parse(envelope.body)
        if parsed.reasons:
            return self._finish(envelope, parsed, started, Outcome.INVALID)
        verdict = self._validator.validate(parsed.data)
        if verdict.status != "valid":
            outcome = Outcome.INVALID if verdict.status == "invalid" else Outcome.UNKNOWN_TYPE
            found = _Parsed(parsed.data, verdict.type_webhook, verdict.errors)
            return self._finish(envelope, found, started, outcome)
        assert verdict.type_webhook is not None  # a valid verdict always names its type
        notification = Notification(parsed.data, verdict.type_webhook, verdict.type_message, envelope)
        return self._route(notification, started)

    def _route(self, notification: Notification, started: float) -> Result:
        routes = self._router.match(notification)
        pending = notification.envelope.pending_handlers
        if pending is not None:
            routes = [route for route in routes if route.name in pending]
        found = _Parsed(notification.data, notification.type_webhook)
        if not routes:
            return self._finish(notification.envelope, found, started, Outcome.UNHANDLED, notification)
        failed = self._run_handlers(notification, routes)
        if not failed:
            return self._finish(notification.envelope, found, started, Outcome.HANDLED, notification)
        if notification.envelope.attempt <= self._settings.max_retries:
            self._retry(notification, failed)
            return None
        reasons = tuple(f"handler {name} raised {error}" for name, error in failed.items())
        failed_parse = _Parsed(notification.data, notification.type_webhook, reasons)
        return self._finish(notification.envelope, failed_parse, started, Outcome.FAILED, notification)

    def _run_handlers(self, notification: Notification, routes: list[Route]) -> dict[str, str]:
        """Names of the handlers that raised, with a short description of the error."""
        failed: dict[str, str] = {}
        for route in routes:
            try:
                route.handler(notification, self._context)
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
        return failed

    def _retry(self, notification: Notification, failed: dict[str, str]) -> None:
        envelope = notification.envelope
        delay = self._settings.backoff_for(envelope.attempt)
        self._queue.enqueue([envelope.next_attempt(tuple(failed))], delay=delay)
        self._metrics.retries.labels(type_webhook=self._metrics.type_label(notification.type_webhook)).inc()
        log.warning(
            "notification sent back for retry",
            extra=fields(
                **_identity(notification.data),
                outcome="retrying",
                attempt=envelope.attempt,
                retry_in_seconds=delay,
                handlers=sorted(failed),
                request_id=envelope.request_id,
            ),
        )

    def _finish(
        self,
        envelope: Envelope,
        parsed: _Parsed,
        started: float,
        outcome: Outcome = Outcome.INVALID,
        notification: Notification | None = None,
    ) -> Outcome:
        """Store (dead letter), count and log one final outcome."""
        identity = _identity(parsed.data)
        if outcome.is_dead_letter:
            self._dead_letters.add(
                DeadLetter(
                    outcome=outcome,
                    reasons=parsed.reasons,
                    envelope=envelope,
                    type_webhook=parsed.type_webhook,
                    id_instance=identity.get("idInstance"),
                )
            )
        self._metrics.count(parsed.type_webhook, outcome, time.perf_counter() - started)
        if log.isEnabledFor(outcome.log_level):
            record = {
                **identity,
                "typeWebhook": parsed.type_webhook,
                "typeMessage": notification.type_message if notification else identity.get("typeMessage"),
                "outcome": outcome.value,
                "request_id": envelope.request_id,
                "source": envelope.source,
                "attempt": envelope.attempt,
            }
            if parsed.reasons:
                record["errors"] = list(parsed.reasons)
            record["notification"] = parsed.data if parsed.data is not None else envelope.body
            log.log(outcome.log_level, f"notification {outcome.value}", extra=fields(**record))
        return outcome


def _parse(body: str) -> _Parsed:
    """JSON text to a notification (unwrapping the pull-API wrapper); reasons are set when unreadable."""
    try:
        data = unwrap(orjson.loads(body))
    except orjson.JSONDecodeError as error:
        return _Parsed(None, None, (f"body is not valid JSON: {str(error)[:200]}",))
    type_webhook = data.get("typeWebhook") if isinstance(data, dict) else None
    return _Parsed(data, type_webhook if isinstance(type_webhook, str) else None)


def _identity(data: object) -> dict[str, Any]:
    """idInstance, idMessage and typeMessage of a notification, where present and readable."""
    if not isinstance(data, dict):
        return {}
    identity: dict[str, Any] = {}
    instance = data.get("instanceData")
    if isinstance(instance, dict) and isinstance(instance.get("idInstance"), int):
        identity["idInstance"] = instance["idInstance"]
    if isinstance(data.get("idMessage"), str):
        identity["idMessage"] = data["idMessage"]
    message = data.get("messageData")
    if isinstance(message, dict) and isinstance(message.get("typeMessage"), str):
        identity["typeMessage"] = message["typeMessage"]
    return identity
