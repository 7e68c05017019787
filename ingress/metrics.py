"""Prometheus metrics of the ingress.

With several uvicorn processes the values live in prometheus-client's multiprocess directory and
``/metrics`` aggregates every process's files, so one scrape sees the whole ingress.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from greenq.ingress.answers import ANSWERS

#: Every value of the ``outcome`` label of the request metrics: one per row of the answer table.
REQUEST_OUTCOMES: Final = tuple(answer.outcome for answer in ANSWERS)

LATENCY_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


@dataclass(frozen=True)
class IngressMetrics:
    """The ingress's instruments, created once per process."""

    requests: Counter
    latency: Histogram
    redis_errors: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry | None = None) -> IngressMetrics:
        registry = registry if registry is not None else CollectorRegistry()
        metrics = cls(
            requests=Counter(
                "greenq_ingress_requests",
                "Webhook requests by outcome.",
                ["outcome"],
                registry=registry,
            ),
            latency=Histogram(
                "greenq_ingress_request_duration_seconds",
                "Time from request start to answer, webhook endpoint only.",
                ["outcome"],
                buckets=LATENCY_BUCKETS,
                registry=registry,
            ),
            redis_errors=Counter(
                "greenq_ingress_redis_errors",
                "Failed writes to Redis (each answered 503 so GREEN API retries).",
                registry=registry,
            ),
        )
        # Every outcome's series exists from the start at 0, so increase() sees even the first refusal
        # (a series born at 1 shows no increase, and the over_cap alert would miss the first stall).
        for outcome in REQUEST_OUTCOMES:
            metrics.requests.labels(outcome=outcome)
        return metrics


def render(registry: CollectorRegistry, multiprocess_dir: str | None) -> bytes:
    """Exposition text: every process's values in multiprocess mode, else this registry's."""
    if multiprocess_dir:
        aggregate = CollectorRegistry()
        MultiProcessCollector(aggregate, path=multiprocess_dir)  # type: ignore[no-untyped-call]
        return generate_latest(aggregate)
    return generate_latest(registry)
