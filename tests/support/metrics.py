"""Reading greenq's Prometheus metrics in tests: from a process's ``/metrics`` page or an in-process
registry."""

from __future__ import annotations

from typing import Any

import httpx2 as httpx


def scrape(url: str, prefix: str) -> float:
    """Sum of the samples whose line starts with ``prefix`` at a Prometheus endpoint."""
    text = httpx.get(url, timeout=5).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(prefix))


def outcome_counts(runtime_registry: Any) -> dict[tuple[str, str], float]:
    """``greenq_notifications_total`` by (type_webhook, outcome) in a worker's registry."""
    counts: dict[tuple[str, str], float] = {}
    for family in runtime_registry.collect():
        if family.name == "greenq_notifications":
            for sample in family.samples:
                if sample.name == "greenq_notifications_total":
                    key = (sample.labels["type_webhook"], sample.labels["outcome"])
                    counts[key] = counts.get(key, 0) + sample.value
    return counts
