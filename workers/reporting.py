"""After the commit: one metric and one log line per notification outcome (or retry).

Reporting can never fail a batch that already committed: a record that cannot be written is logged as such.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from greenq.core.logs import fields
from greenq.core.notification import id_instance, id_message, type_message
from greenq.workers.body import body_preview
from greenq.workers.items import Item
from greenq.workers.metrics import WorkerMetrics

log = logging.getLogger("greenq.worker")


class Reporter:
    """Counts and logs items after their batch committed."""

    def __init__(self, metrics: WorkerMetrics) -> None:
        self._metrics = metrics

    def report(self, item: Item) -> None:
        try:
            self._report(item)
        except Exception:
            log.exception(
                "could not report a committed notification", extra=fields(**notification_ids(item.data))
            )

    def _report(self, item: Item) -> None:
        if item.already_committed:
            log.info(
                "notification already committed by an earlier run of its job; skipped",
                extra=fields(**notification_ids(item.data), request_id=item.envelope.request_id),
            )
            return
        seconds = time.perf_counter() - item.started
        if item.result is None:
            self._report_retry(item)
            return
        outcome = item.result
        self._metrics.count(item.type_webhook, outcome, seconds)
        if not log.isEnabledFor(outcome.log_level):
            return
        record: dict[str, Any] = {
            **notification_ids(item.data),
            "typeWebhook": item.type_webhook,
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
        record["notification"] = item.data if item.verdict is not None else body_preview(item.envelope)
        log.log(outcome.log_level, f"notification {outcome.value}", extra=fields(**record))

    def _report_retry(self, item: Item) -> None:
        type_webhook = item.type_webhook
        self._metrics.retries.labels(type_webhook=self._metrics.type_label(type_webhook)).inc()
        log.warning(
            "notification sent back for retry",
            extra=fields(
                **notification_ids(item.data),
                typeWebhook=type_webhook,
                outcome="retrying",
                attempt=item.envelope.attempt,
                retry_in_seconds=item.retry_in,
                errors=list(item.reasons),
                request_id=item.envelope.request_id,
            ),
        )


def notification_ids(data: object) -> dict[str, Any]:
    """idInstance, idMessage and typeMessage of a notification, where present and readable."""
    if not isinstance(data, dict):
        return {}
    found: dict[str, Any] = {}
    instance, message_id, message_type = id_instance(data), id_message(data), type_message(data)
    if isinstance(instance, int):
        found["idInstance"] = instance
    if isinstance(message_id, str):
        found["idMessage"] = message_id
    if isinstance(message_type, str):
        found["typeMessage"] = message_type
    return found
