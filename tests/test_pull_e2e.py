"""Pull mode end to end, every part a real process: ``greenq simulator`` (with 5xx bursts) -> ``greenq poll``
(restarted midway) -> redis-server -> ``greenq worker`` -> the built-in stream sink.

The default, ordered mode keeps each chat's order: within an event stream, the entries of one chat
(instance + chat id) appear in the order the poller enqueued them (different chats drain in parallel).
"""

from __future__ import annotations

import signal
import time
from collections import Counter

import orjson
import pytest
from redis import Redis

from greenq.core import keys, partitions
from greenq.core.contract import notification_queue
from greenq.local.procs import stop_process
from greenq.simulator.control import SimulatorControl
from tests.support.processes import wait_until
from tests.support.pull_pipeline import INSTANCES, Pipeline
from tests.support.simulator import (
    INSTANCE_TOKEN,
    OTHER_TOKEN,
    identity,
    make_notifications,
    sample_templates,
)

pytestmark = pytest.mark.slow


class BurstInjector:
    """Every ``every`` seconds, the next few API calls of one instance (alternating) answer 5xx."""

    def __init__(self, control: SimulatorControl, every: float = 0.3, limit: int = 40) -> None:
        self._control = control
        self._every = every
        self._limit = limit
        self._last = time.monotonic()
        self.bursts = 0

    def tick(self) -> None:
        if self.bursts < self._limit and time.monotonic() - self._last >= self._every:
            status = (500, 502, 503)[self.bursts % 3]
            self._control.inject(INSTANCES[self.bursts % 2], "fail", 3, status=status)
            self.bursts += 1
            self._last = time.monotonic()


TYPES = sorted({str(sample["typeWebhook"]) for sample in sample_templates()})


def stream_identities(redis: Redis, type_webhook: str) -> list[tuple[int, int]]:
    """(idInstance, timestamp) of each entry of one event stream, in stream order."""
    return [identity(body) for body in stream_bodies(redis, type_webhook)]


def stream_bodies(redis: Redis, type_webhook: str) -> list[bytes | str]:
    entries = redis.xrange(keys.event_stream(type_webhook)) or []
    return [entry[b"body"] for _, entry in entries if entry is not None]


def stream_length(redis: Redis) -> int:
    """Entries in all event streams together."""
    return sum(int(redis.xlen(keys.event_stream(type_webhook))) for type_webhook in TYPES)


def stream_entries(redis: Redis) -> list[tuple[int, int]]:
    """Every entry of every event stream."""
    return [found for type_webhook in TYPES for found in stream_identities(redis, type_webhook)]


def per_chat_order_is_arrival_order(redis: Redis) -> bool:
    """Within each stream, each chat's notifications appear in the order they were queued (an instance's
    timestamps rise in the order the simulator hands them out)."""
    for type_webhook in TYPES:
        seen: dict[str, int] = {}
        for body in stream_bodies(redis, type_webhook):
            chat, (_, timestamp) = partitions.chat_key(orjson.loads(body)), identity(body)
            if timestamp <= seen.get(chat, -1):
                return False
            seen[chat] = timestamp
    return True


def run_until_drained(
    pull_pipeline: Pipeline, redis: Redis, expected: int, bursts: BurstInjector, timeout: float
) -> None:
    def drained() -> bool:
        bursts.tick()
        stats = pull_pipeline.stats()
        queues_empty = all(s["queue_length"] == 0 for s in stats.values())
        return (
            queues_empty and notification_queue(redis).count == 0 and len(stream_entries(redis)) >= expected
        )

    wait_until(drained, timeout, "the simulator's queues and ours to drain", interval=0.1)


def test_two_instances_a_thousand_each_with_5xx_bursts_and_a_graceful_restart(
    pull_pipeline: Pipeline, redis_conn: Redis
) -> None:
    started = time.monotonic()
    sent = {id_instance: make_notifications(id_instance, 1000) for id_instance in INSTANCES}
    for id_instance, notifications in sent.items():
        pull_pipeline.control.add(id_instance, notifications)
    worker = pull_pipeline.start_worker()
    poller = pull_pipeline.start_poller()
    bursts = BurstInjector(pull_pipeline.control)

    def far_enough() -> bool:
        bursts.tick()
        return pull_pipeline.deleted() >= 800

    wait_until(far_enough, 40, "800 notifications polled before the restart", interval=0.05)
    assert stop_process(poller) == 0  # SIGTERM: the notifications in hand are finished first
    restarted_at = pull_pipeline.deleted()
    pull_pipeline.start_poller()
    run_until_drained(pull_pipeline, redis_conn, 2000, bursts, 60)
    assert stop_process(pull_pipeline.processes[-1]) == 0
    assert stop_process(worker) == 0
    elapsed = time.monotonic() - started

    entries = stream_entries(redis_conn)
    counts = Counter(entries)
    expected = {identity(orjson.dumps(n)) for notifications in sent.values() for n in notifications}
    assert set(counts) == expected, "a notification was lost"
    assert max(counts.values()) == 1, f"processed twice: {[k for k, c in counts.items() if c > 1][:5]}"
    assert per_chat_order_is_arrival_order(redis_conn)
    stats = pull_pipeline.stats()
    assert all((s["deleted"], s["queue_length"]) == (1000, 0) for s in stats.values())
    assert sum(s["faults_injected"] for s in stats.values()) >= 3 * min(bursts.bursts, 10)
    assert 800 <= restarted_at < 2000
    for log in pull_pipeline.poller_logs:
        text = log.read_text()
        assert INSTANCE_TOKEN not in text
        assert OTHER_TOKEN not in text
        assert '"message":"poller stopped"' in text
    print(f"\npull e2e: 2 x 1000, {bursts.bursts} 5xx bursts, restart after {restarted_at}: {elapsed:.1f}s")


def test_a_crashed_poller_loses_nothing(pull_pipeline: Pipeline, redis_conn: Redis) -> None:
    sent = {id_instance: make_notifications(id_instance, 300) for id_instance in INSTANCES}
    for id_instance, notifications in sent.items():
        pull_pipeline.control.add(id_instance, notifications)
    worker = pull_pipeline.start_worker()
    poller = pull_pipeline.start_poller()
    bursts = BurstInjector(pull_pipeline.control, every=0.2, limit=10)

    def far_enough() -> bool:
        bursts.tick()
        return pull_pipeline.deleted() >= 250

    wait_until(far_enough, 40, "250 notifications polled before the crash", interval=0.02)
    assert stop_process(poller, sig=signal.SIGKILL) == -signal.SIGKILL
    pull_pipeline.start_poller()
    run_until_drained(pull_pipeline, redis_conn, 600, bursts, 60)
    assert stop_process(pull_pipeline.processes[-1]) == 0
    assert stop_process(worker) == 0

    counts = Counter(stream_entries(redis_conn))
    expected = {identity(orjson.dumps(n)) for notifications in sent.values() for n in notifications}
    assert set(counts) == expected, "a notification was lost"
    # Each instance had at most one notification between enqueue and delete when the poller died.
    assert sum(counts.values()) - len(expected) <= len(INSTANCES)
    assert all(s["queue_length"] == 0 for s in pull_pipeline.stats().values())
