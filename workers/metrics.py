"""Prometheus metrics of a worker process, served on its own HTTP port.

Queue depth, backlog age, held chats (ordered mode), dead-letter size, live workers, RQ's failed registry
and Redis memory against its ``maxmemory`` are read from Redis at scrape time (reads only, so they work
while Redis is full), so they are right even when this worker is idle.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from redis import Redis
from redis.exceptions import RedisError, ResponseError

from greenq.core import keys
from greenq.core.deadletters import DeadLetterStore, read_failed_jobs
from greenq.core.outcomes import Outcome
from greenq.core.redis_memory import RedisMemory, read_memory
from greenq.core.status import read_backlog, read_held_chats

DURATION_BUCKETS: Final = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0)
BATCH_BUCKETS: Final = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000)

#: ``type_webhook`` label for types outside the schema set, so a hostile sender cannot grow label sets.
OTHER_TYPE: Final = "other"


@dataclass(frozen=True)
class WorkerMetrics:
    """The worker's instruments, created once per process."""

    notifications: Counter
    duration: Histogram
    batch_size: Histogram
    retries: Counter
    #: Drains the maintenance sweep queued for a partition left without one, by why none was queued.
    lost_drains: Counter
    known_types: frozenset[str]
    _children: dict[tuple[str, Outcome], tuple[Counter, Histogram]] = field(
        default_factory=dict, compare=False, repr=False
    )

    @classmethod
    def create(cls, registry: CollectorRegistry, known_types: Iterable[str]) -> WorkerMetrics:
        return cls(
            notifications=Counter(
                "greenq_notifications",
                "Notifications processed, by typeWebhook and final outcome.",
                ["type_webhook", "outcome"],
                registry=registry,
            ),
            duration=Histogram(
                "greenq_notification_processing_seconds",
                "Parse + validate + route + handlers, per notification.",
                ["type_webhook"],
                buckets=DURATION_BUCKETS,
                registry=registry,
            ),
            batch_size=Histogram(
                "greenq_batch_size",
                "Notifications per RQ job.",
                buckets=BATCH_BUCKETS,
                registry=registry,
            ),
            retries=Counter(
                "greenq_handler_retries",
                "Notifications sent back for a retry after a handler raised.",
                ["type_webhook"],
                registry=registry,
            ),
            lost_drains=Counter(
                "greenq_lost_drains",
                "Partition drains the maintenance sweep queued because none was: no scheduled flag "
                "(no_flag), or a flag whose job was never queued (lost_job: a producer stopped between its "
                "two writes).",
                ["reason"],
                registry=registry,
            ),
            known_types=frozenset(known_types),
        )

    def type_label(self, type_webhook: str | None) -> str:
        """Bounded label value for a typeWebhook."""
        return type_webhook if type_webhook in self.known_types else OTHER_TYPE

    def count(self, type_webhook: str | None, outcome: Outcome, seconds: float) -> None:
        counter, histogram = self._series(self.type_label(type_webhook), outcome)
        counter.inc()
        histogram.observe(seconds)

    def _series(self, label: str, outcome: Outcome) -> tuple[Counter, Histogram]:
        """The two series one notification moves, looked up once per label pair (``labels()`` costs a
        lock and several µs, paid per notification otherwise; the pairs are bounded by ``type_label``)."""
        key = (label, outcome)
        series = self._children.get(key)
        if series is None:
            series = (
                self.notifications.labels(type_webhook=label, outcome=outcome.value),
                self.duration.labels(type_webhook=label),
            )
            self._children[key] = series
        return series


class RedisStateCollector(Collector):
    """Gauges read from Redis on each scrape: queue depth and age, held chats, dead letters, live workers."""

    def __init__(self, connection: Redis, partition_count: int = 0) -> None:
        self._redis = connection
        self._partitions = partition_count  # ordered mode: partition streams count as backlog

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("greenq_redis_up", "1 if this worker reached Redis at scrape time.")
        try:
            depth, age, dead, workers = self._read()
            held = read_held_chats(self._redis, self._partitions)
            failed = read_failed_jobs(self._redis)
            memory = self._memory()
        except RedisError:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        if memory is not None:
            yield from _memory_gauges(memory)
        yield _gauge("greenq_failed_jobs", "Jobs in RQ's failed registry.", failed.count, keys.QUEUE_NAME)
        yield _gauge(
            "greenq_failed_job_oldest_age_seconds",
            "Seconds since the oldest job in RQ's failed registry failed (RQ deletes it after 7 days).",
            failed.oldest_age_seconds,
            keys.QUEUE_NAME,
        )
        yield _gauge("greenq_queue_depth", "Jobs waiting in the queue.", depth, keys.QUEUE_NAME)
        yield _gauge(
            "greenq_queue_oldest_age_seconds", "Age of the oldest waiting job.", age, keys.QUEUE_NAME
        )
        yield GaugeMetricFamily(
            "greenq_held_chats",
            "Ordered mode: chats held behind a notification waiting for its retry (0 in jobs mode).",
            value=held,
        )
        yield GaugeMetricFamily("greenq_dead_letters", "Entries in the dead-letter stream.", value=dead)
        yield GaugeMetricFamily("greenq_workers_alive", "RQ workers registered for the queue.", value=workers)

    def _memory(self) -> RedisMemory | None:
        """None when this Redis refuses INFO (some managed services rename it): the other gauges stay."""
        try:
            return read_memory(self._redis)
        except ResponseError:
            return None

    def _read(self) -> tuple[int, float, int, int]:
        backlog = read_backlog(self._redis, partition_count=self._partitions)
        dead = DeadLetterStore(self._redis).size()
        workers = int(self._redis.scard(keys.WORKERS_SET))
        return backlog.depth, backlog.oldest_age_seconds, dead, workers


def _memory_gauges(memory: RedisMemory) -> Iterator[Metric]:
    yield GaugeMetricFamily(
        "greenq_redis_memory_used_bytes", "Redis used_memory (INFO memory).", value=memory.used_bytes
    )
    yield GaugeMetricFamily(
        "greenq_redis_memory_max_bytes",
        "Redis maxmemory (0 = no limit); at the limit noeviction refuses writes.",
        value=memory.max_bytes,
    )


def _gauge(name: str, doc: str, value: float, queue: str) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc, labels=["queue"])
    family.add_metric([queue], value)
    return family
