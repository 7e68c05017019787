"""Metrics of ``greenq reconcile`` (``greenq_reconcile_*``), labelled by the instance's configured name.

``recovered`` is the alertable one: every recovered message is a notification GREEN API failed to deliver.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge

from greenq.pull.instance_metrics import CountsErrors, errors_counter, instance_counter, instance_gauge


@dataclass(frozen=True)
class ReconcileMetrics(CountsErrors):
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
            checked=instance_counter(
                registry,
                "greenq_reconcile_checked_total",
                "Journal messages compared with what greenq received.",
            ),
            recovered=instance_counter(
                registry,
                "greenq_reconcile_recovered_total",
                "Messages GREEN API journaled but never delivered, enqueued by the reconciler.",
            ),
            unmapped=instance_counter(
                registry,
                "greenq_reconcile_unmapped_total",
                "Undelivered journal messages that could not be rebuilt as notifications (logged).",
            ),
            errors=errors_counter(
                registry,
                "greenq_reconcile_errors_total",
                "Failed journal calls (after retries) and failed enqueues, by kind.",
            ),
            last_success=instance_gauge(
                registry,
                "greenq_reconcile_last_success_timestamp_seconds",
                "When the instance's last complete reconciliation ended (UNIX time).",
            ),
        )
        for name in instances:
            for counter in (metrics.checked, metrics.recovered, metrics.unmapped):
                counter.labels(instance=name)
            metrics._errors_start_at_zero(name)
        return metrics
