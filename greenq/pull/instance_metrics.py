"""What the poller's and the reconciler's metrics share: series labelled by the instance's configured name,
and an errors counter by ``kind`` whose every kind starts at zero for each instance."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

from greenq.pull.errors import ERROR_KINDS, ErrorKind


def instance_counter(registry: CollectorRegistry, name: str, documentation: str) -> Counter:
    return Counter(name, documentation, ["instance"], registry=registry)


def instance_gauge(registry: CollectorRegistry, name: str, documentation: str) -> Gauge:
    return Gauge(name, documentation, ["instance"], registry=registry)


def errors_counter(registry: CollectorRegistry, name: str, documentation: str) -> Counter:
    return Counter(name, documentation, ["instance", "kind"], registry=registry)


class CountsErrors:
    """Mixin for a metrics class with an ``errors`` counter made by :func:`errors_counter`."""

    errors: Counter

    def error(self, instance: str, kind: ErrorKind) -> None:
        self.errors.labels(instance=instance, kind=kind).inc()

    def _errors_start_at_zero(self, instance: str) -> None:
        for kind in ERROR_KINDS:
            self.errors.labels(instance=instance, kind=kind)
