"""The sender's Prometheus metrics, labelled by the instance's configured name.

``greenq_outbox_depth`` / ``greenq_outbox_oldest_age_seconds`` cover what this sender has read and not yet
settled (waiting for its chat, its slot, a retry or the check after an ambiguous call);
``greenq_outbox_length`` is XLEN of each outbox partition stream it holds (read or not).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final, Literal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

SendResult = Literal["sent", "found_after_ambiguous", "retried", "rate_limited", "dead"]
SEND_RESULTS: Final[tuple[SendResult, ...]] = (
    "sent",
    "found_after_ambiguous",
    "retried",
    "rate_limited",
    "dead",
)

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60)


@dataclass(frozen=True)
class SenderMetrics:
    sends: Counter
    latency: Histogram
    depth: Gauge
    oldest_age: Gauge
    length: Gauge
    partitions: Gauge

    @classmethod
    def create(cls, registry: CollectorRegistry, instances: Iterable[str] = ()) -> SenderMetrics:
        metrics = cls(
            sends=Counter(
                "greenq_sends_total",
                "Outbox send outcomes: sent, found after an ambiguous call (not resent), retried, "
                "rate limited (429), dead-lettered.",
                ["instance", "method", "result"],
                registry=registry,
            ),
            latency=Histogram(
                "greenq_send_latency_seconds",
                "Duration of send calls that GREEN API answered with an idMessage.",
                ["instance", "method"],
                buckets=LATENCY_BUCKETS,
                registry=registry,
            ),
            depth=_instance_gauge(
                registry, "greenq_outbox_depth", "Outbox entries read and not yet settled."
            ),
            oldest_age=_instance_gauge(
                registry,
                "greenq_outbox_oldest_age_seconds",
                "Age (since its handler asked) of the oldest entry read and not yet settled; 0 when none.",
            ),
            length=Gauge(
                "greenq_outbox_length",
                "Entries in each outbox partition stream this sender holds (XLEN).",
                ["partition"],
                registry=registry,
            ),
            partitions=Gauge(
                "greenq_sender_partitions", "Outbox partitions this sender holds.", registry=registry
            ),
        )
        for name in instances:
            metrics.depth.labels(instance=name).set(0)
            metrics.oldest_age.labels(instance=name).set(0)
        return metrics

    def count(self, instance: str, method: str, result: SendResult) -> None:
        self.sends.labels(instance=instance, method=method, result=result).inc()


def _instance_gauge(registry: CollectorRegistry, name: str, documentation: str) -> Gauge:
    return Gauge(name, documentation, ["instance"], registry=registry)


@dataclass
class Backlog:
    """Entries read and not settled, per idInstance: ``{idInstance: {(partition, stream id): created}}``;
    published under the instances' configured names (``names``: idInstance -> name)."""

    names: dict[str, str] = field(default_factory=dict)
    entries: dict[str, dict[tuple[int, bytes], float]] = field(default_factory=dict)

    def add(self, instance: str, key: tuple[int, bytes], created: float) -> None:
        self.entries.setdefault(instance, {})[key] = created

    def remove(self, instance: str, key: tuple[int, bytes]) -> None:
        self.entries.get(instance, {}).pop(key, None)

    def drop_partition(self, partition: int) -> None:
        for held in self.entries.values():
            for key in [key for key in held if key[0] == partition]:
                del held[key]

    def publish(self, metrics: SenderMetrics) -> None:
        now = time.time()
        for instance, held in self.entries.items():
            name = self.names.get(instance, "unknown")
            metrics.depth.labels(instance=name).set(len(held))
            oldest = min(held.values(), default=now)
            metrics.oldest_age.labels(instance=name).set(max(0.0, now - oldest))
