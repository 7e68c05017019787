"""Metrics of ``greenq reconcile`` (``greenq_reconcile_*``), labelled by the instance's configured name.

``recovered`` is the alertable one: every recovered message is a notification GREEN API failed to deliver.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge

from greenq.pull.errors import ERROR_KINDS, ErrorKind


@dataclass(frozen=True)
class ReconcileMetrics:
    checked: Counter
    recovered: Counter
    unmapped: Counter
    errors: Counter
    last_success: Gauge

    @classmethod
    def create(cls, registry: CollectorRegistry, instances: Iterable[str] = ()) -> ReconcileMetrics:
        """Register the metrics; each instance's counters start at zero so increase() works at once. The
        last-success gauge appears with the first success ("never" must not read as "in 1970")."""
        metrics = cls(
            checked=Counter(
                "greenq_reconcile_checked_total",
                "Journal messages compared with what greenq received.",
                ["instance"],
                registry=registry,
            ),
            recovered=Counter(
                "greenq_reconcile_recovered_total",
                "Messages GREEN API journaled but never delivered, enqueued by the reconciler.",
                ["instance"],
                registry=registry,
            ),
            unmapped=Counter(
                "greenq_reconcile_unmapped_total",
                "Undelivered journal messages that could not be rebuilt as notifications (logged).",
                ["instance"],
                registry=registry,
            ),
            errors=Counter(
                "greenq_reconcile_errors_total",
                "Failed journal calls (after retries) and failed enqueues, by kind.",
                ["instance", "kind"],
                registry=registry,
            ),
            last_success=Gauge(
                "greenq_reconcile_last_success_timestamp_seconds",
                "When the instance's last complete reconciliation ended (UNIX time).",
                ["instance"],
                registry=registry,
            ),
        )
        for name in instances:
            for counter in (metrics.checked, metrics.recovered, metrics.unmapped):
                counter.labels(instance=name)
            for kind in ERROR_KINDS:
                metrics.errors.labels(instance=name, kind=kind)
        return metrics

    def error(self, instance: str, kind: ErrorKind) -> None:
        self.errors.labels(instance=instance, kind=kind).inc()
