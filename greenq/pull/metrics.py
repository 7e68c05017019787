"""The poller's Prometheus metrics (``greenq_poller_*``), labelled by the instance's configured *name*."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from greenq.pull.instance_metrics import CountsErrors, errors_counter, instance_counter, instance_gauge

#: Long polls last up to receiveTimeout (60 s at most) plus the request timeout.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 45, 60, 90)


@dataclass(frozen=True)
class PollerMetrics(CountsErrors):
    received: Counter
    deleted: Counter
    errors: Counter
    poll_latency: Histogram
    paused: Gauge

    @classmethod
    def create(cls, registry: CollectorRegistry, instances: Iterable[str] = ()) -> PollerMetrics:
        """Register the metrics; each instance's series start at zero so rates work from the first scrape."""
        metrics = cls(
            received=instance_counter(
                registry, "greenq_poller_received_total", "Notifications taken from receiveNotification."
            ),
            deleted=instance_counter(
                registry,
                "greenq_poller_deleted_total",
                "Notifications deleted with deleteNotification after their enqueue.",
            ),
            errors=errors_counter(
                registry, "greenq_poller_errors_total", "Failed GREEN API calls and enqueues, by kind."
            ),
            poll_latency=Histogram(
                "greenq_poller_poll_latency_seconds",
                "Duration of successful receiveNotification calls (long polls included).",
                ["instance"],
                buckets=LATENCY_BUCKETS,
                registry=registry,
            ),
            paused=instance_gauge(
                registry,
                "greenq_poller_instance_paused",
                "1 while GREEN API refuses the instance (401/403/404) and it waits to try again.",
            ),
        )
        for name in instances:
            metrics._start_at_zero(name)
        return metrics

    def _start_at_zero(self, instance: str) -> None:
        self.received.labels(instance=instance)
        self.deleted.labels(instance=instance)
        self.poll_latency.labels(instance=instance)
        self.paused.labels(instance=instance).set(0)
        self._errors_start_at_zero(instance)
