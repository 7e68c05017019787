"""After the commit: one metric and one log line per notification outcome (or retry), one log line otherwise.

Reporting can never fail a batch that already committed: a record that cannot be written is logged as such.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from greenq.core.logs import FIELDS_ATTR, batched_lines, fields
from greenq.core.notification import id_instance, id_message, type_message
from greenq.workers.body import body_preview
from greenq.workers.metrics import WorkerMetrics
from greenq.workers.results import AlreadyCommitted, Decided, Deferred, Retry, Settled, Valid

log = logging.getLogger("greenq.worker")


class Reporter:
    """Counts and logs notifications after their batch committed."""

    def __init__(self, metrics: WorkerMetrics) -> None:
        self._metrics = metrics

    def report_all(self, batch: list[Settled]) -> None:
        """Report a committed batch; its log lines are written together when it is done."""
        with batched_lines():
            for settled in batch:
                self.report(settled)

    def report(self, settled: Settled) -> None:
        try:
            self._report(settled)
        except Exception:
            log.exception(
                "could not report a committed notification",
                extra=fields(**notification_ids(settled.read.data)),
            )

    def _report(self, settled: Settled) -> None:
        read = settled.read
        match settled.decision:
            case Decided() as decided:
                self._report_outcome(settled, decided)
            case Retry() as retry:
                self._report_retry(settled, retry)
            case Deferred():
                log.info(
                    "notification waits behind an earlier notification of its chat",
                    extra=fields(**notification_ids(read.data), request_id=read.envelope.request_id),
                )
            case AlreadyCommitted():
                log.info(
                    "notification already committed by an earlier run of its job; skipped",
                    extra=fields(**notification_ids(read.data), request_id=read.envelope.request_id),
                )

    def _report_outcome(self, settled: Settled, decided: Decided) -> None:
        read, outcome = settled.read, decided.outcome
        self._metrics.count(read.type_webhook, outcome, time.perf_counter() - read.started)
        if not log.isEnabledFor(outcome.log_level):
            return
        record: dict[str, Any] = {
            **notification_ids(read.data),
            "typeWebhook": read.type_webhook,
            "outcome": outcome.value,
            "request_id": read.envelope.request_id,
            "received_at": read.envelope.received_at,
            "source": read.envelope.source,
            "attempt": read.envelope.attempt,
        }
        if read.type_message is not None:
            record["typeMessage"] = read.type_message
        if decided.reasons:
            record["errors"] = list(decided.reasons)
        validated = isinstance(read, Valid) or read.verdict is not None
        record["notification"] = read.data if validated else body_preview(read.envelope)
        log.log(outcome.log_level, f"notification {outcome.value}", extra={FIELDS_ATTR: record})

    def _report_retry(self, settled: Settled, retry: Retry) -> None:
        read = settled.read
        self._metrics.retries.labels(type_webhook=self._metrics.type_label(read.type_webhook)).inc()
        log.warning(
            "notification sent back for retry",
            extra=fields(
                **notification_ids(read.data),
                typeWebhook=read.type_webhook,
                outcome="retrying",
                attempt=read.envelope.attempt,
                retry_in_seconds=retry.retry_in,
                errors=list(retry.reasons),
                request_id=read.envelope.request_id,
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
