"""Pull mode end to end, every part a real process: ``greenq simulator`` (with 5xx bursts) -> ``greenq poll``
(restarted midway) -> redis-server -> ``greenq worker`` -> the built-in stream sink.

One worker processes jobs in queue order, so the order of entries in the event streams is the order the
poller enqueued them in.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import pytest
from redis import Redis

from greenq.core import keys
from greenq.core.contract import notification_queue
from greenq.local.procs import free_port, stop_process, wait_for_port
from greenq.local.redis_server import LocalRedis
from greenq.simulator.control import SimulatorControl
from tests.test_simulator import (
    CLEAN_UVICORN_EXITS,
    GREENQ,
    INSTANCE,
    INSTANCE_TOKEN,
    OTHER_INSTANCE,
    OTHER_TOKEN,
    identity,
    make_notifications,
    sample_templates,
    subprocess_env,
    wait_until,
)

pytestmark = pytest.mark.slow

INSTANCES = (INSTANCE, OTHER_INSTANCE)


@dataclass
class Pipeline:
    """The processes of one pull-mode run and where their logs go."""

    redis_server: LocalRedis
    workdir: Path
    sim_url: str
    control: SimulatorControl
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    poller_logs: list[Path] = field(default_factory=list)

    def env(self, **extra: str) -> dict[str, str]:
        return subprocess_env(
            self.redis_server,
            GREENQ_INSTANCES=(
                f"first={self.sim_url}|{INSTANCE}|{INSTANCE_TOKEN},second={self.sim_url}|{OTHER_INSTANCE}|{OTHER_TOKEN}"
            ),
            GREENQ_RECEIVE_TIMEOUT="5",
            GREENQ_POLL_BACKOFF_BASE="0.02",
            GREENQ_POLL_BACKOFF_CAP="0.2",
            GREENQ_POLLER_METRICS_PORT="0",
            GREENQ_METRICS_PORT="0",
            **extra,
        )

    def start_poller(self) -> subprocess.Popen[bytes]:
        log = self.workdir / f"poller-{len(self.poller_logs) + 1}.log"
        self.poller_logs.append(log)
        with log.open("wb") as stderr:
            process = subprocess.Popen([*GREENQ, "poll"], env=self.env(), cwd=self.workdir, stderr=stderr)
        self.processes.append(process)
        return process

    def start_worker(self) -> subprocess.Popen[bytes]:
        with (self.workdir / "worker.log").open("wb") as stderr:
            process = subprocess.Popen(
                [*GREENQ, "worker", "--name", "e2e-worker"],
                env=self.env(GREENQ_LOG_LEVEL="WARNING"),  # an INFO line per notification costs CPU here
                cwd=self.workdir,
                stderr=stderr,
            )
        self.processes.append(process)
        return process

    def stats(self) -> dict[int, dict[str, int]]:
        return {id_instance: self.control.stats(id_instance) for id_instance in INSTANCES}

    def deleted(self) -> int:
        return sum(stats["deleted"] for stats in self.stats().values())


@pytest.fixture
def pipeline(redis_server: LocalRedis, redis_conn: Redis, tmp_path: Path) -> Iterator[Pipeline]:
    port = free_port()
    simulator = subprocess.Popen(
        [
            *GREENQ,
            "simulator",
            "--port",
            str(port),
            "--log-level",
            "WARNING",
            "--instances",
            f"{INSTANCE}={INSTANCE_TOKEN},{OTHER_INSTANCE}={OTHER_TOKEN}",
        ],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
    )
    wait_for_port("127.0.0.1", port, 30, simulator)
    control = SimulatorControl(f"http://127.0.0.1:{port}")
    running = Pipeline(redis_server, tmp_path, f"http://127.0.0.1:{port}", control)
    try:
        yield running
    finally:
        for process in running.processes:
            if process.poll() is None:  # a failed test left it running
                stop_process(process, sig=signal.SIGKILL)
        control.close()
        assert stop_process(simulator) in CLEAN_UVICORN_EXITS


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
    entries = redis.xrange(keys.event_stream(type_webhook)) or []
    return [identity(entry[b"body"]) for _, entry in entries if entry is not None]


def stream_length(redis: Redis) -> int:
    """Entries in all event streams together."""
    return sum(int(redis.xlen(keys.event_stream(type_webhook))) for type_webhook in TYPES)


def stream_entries(redis: Redis) -> list[tuple[int, int]]:
    """Every entry of every event stream."""
    return [found for type_webhook in TYPES for found in stream_identities(redis, type_webhook)]


def per_stream_order_is_arrival_order(redis: Redis) -> bool:
    """Within each stream, each instance's notifications appear in the order they were queued."""
    for type_webhook in TYPES:
        seen: dict[int, int] = {}
        for id_instance, timestamp in stream_identities(redis, type_webhook):
            if timestamp <= seen.get(id_instance, -1):
                return False
            seen[id_instance] = timestamp
    return True


def run_until_drained(
    pipeline: Pipeline, redis: Redis, expected: int, bursts: BurstInjector, timeout: float
) -> None:
    def drained() -> bool:
        bursts.tick()
        stats = pipeline.stats()
        queues_empty = all(s["queue_length"] == 0 for s in stats.values())
        return (
            queues_empty and notification_queue(redis).count == 0 and len(stream_entries(redis)) >= expected
        )

    wait_until(drained, timeout, "the simulator's queues and ours to drain", interval=0.1)


def test_two_instances_a_thousand_each_with_5xx_bursts_and_a_graceful_restart(
    pipeline: Pipeline, redis_conn: Redis
) -> None:
    started = time.monotonic()
    sent = {id_instance: make_notifications(id_instance, 1000) for id_instance in INSTANCES}
    for id_instance, notifications in sent.items():
        pipeline.control.add(id_instance, notifications)
    worker = pipeline.start_worker()
    poller = pipeline.start_poller()
    bursts = BurstInjector(pipeline.control)

    def far_enough() -> bool:
        bursts.tick()
        return pipeline.deleted() >= 800

    wait_until(far_enough, 40, "800 notifications polled before the restart", interval=0.05)
    assert stop_process(poller) == 0  # SIGTERM: the notifications in hand are finished first
    restarted_at = pipeline.deleted()
    pipeline.start_poller()
    run_until_drained(pipeline, redis_conn, 2000, bursts, 60)
    assert stop_process(pipeline.processes[-1]) == 0
    assert stop_process(worker) == 0
    elapsed = time.monotonic() - started

    entries = stream_entries(redis_conn)
    counts = Counter(entries)
    expected = {identity(orjson.dumps(n)) for notifications in sent.values() for n in notifications}
    assert set(counts) == expected, "a notification was lost"
    assert max(counts.values()) == 1, f"processed twice: {[k for k, c in counts.items() if c > 1][:5]}"
    assert per_stream_order_is_arrival_order(redis_conn)
    stats = pipeline.stats()
    assert all((s["deleted"], s["queue_length"]) == (1000, 0) for s in stats.values())
    assert sum(s["faults_injected"] for s in stats.values()) >= 3 * min(bursts.bursts, 10)
    assert 800 <= restarted_at < 2000
    for log in pipeline.poller_logs:
        text = log.read_text()
        assert INSTANCE_TOKEN not in text
        assert OTHER_TOKEN not in text
        assert '"message":"poller stopped"' in text
    print(f"\npull e2e: 2 x 1000, {bursts.bursts} 5xx bursts, restart after {restarted_at}: {elapsed:.1f}s")


def test_a_crashed_poller_loses_nothing(pipeline: Pipeline, redis_conn: Redis) -> None:
    sent = {id_instance: make_notifications(id_instance, 300) for id_instance in INSTANCES}
    for id_instance, notifications in sent.items():
        pipeline.control.add(id_instance, notifications)
    worker = pipeline.start_worker()
    poller = pipeline.start_poller()
    bursts = BurstInjector(pipeline.control, every=0.2, limit=10)

    def far_enough() -> bool:
        bursts.tick()
        return pipeline.deleted() >= 250

    wait_until(far_enough, 40, "250 notifications polled before the crash", interval=0.02)
    assert stop_process(poller, sig=signal.SIGKILL) == -signal.SIGKILL
    pipeline.start_poller()
    run_until_drained(pipeline, redis_conn, 600, bursts, 60)
    assert stop_process(pipeline.processes[-1]) == 0
    assert stop_process(worker) == 0

    counts = Counter(stream_entries(redis_conn))
    expected = {identity(orjson.dumps(n)) for notifications in sent.values() for n in notifications}
    assert set(counts) == expected, "a notification was lost"
    # Each instance had at most one notification between enqueue and delete when the poller died.
    assert sum(counts.values()) - len(expected) <= len(INSTANCES)
    assert all(s["queue_length"] == 0 for s in pipeline.stats().values())
