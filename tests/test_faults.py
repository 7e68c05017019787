"""Faults injected into real processes: workers and Redis killed, stopped and restarted under load.

Each test sends work, injects the fault, then counts: every notification answered 200 (or enqueued) must be
processed, and handlers must see each one once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import cast

import httpx2 as httpx
import orjson
import pytest
from redis import Redis

from greenq.core.contract import Envelope, NotificationQueue, notification_queue
from greenq.local.procs import free_port, stop_process, wait_for_port
from greenq.local.redis_server import LocalRedis
from tests.conftest import TOKEN, load_sample
from tests.support.deliveries import Deliveries
from tests.support.local_pipeline import distinct_bodies, stream_ids
from tests.support.processes import env_for, kill_group, poll, start
from tests.support.routers import BLOCK_KEY, SEEN_STREAM

ABANDONED_AFTER = 5
MAINTENANCE = 2


def seen_ids(redis: Redis) -> list[str]:
    entries = cast(list[tuple[bytes, dict[bytes, bytes]]], redis.xrange(SEEN_STREAM))
    return [fields[b"id"].decode() for _, fields in entries]


def start_worker(redis_server: LocalRedis, name: str, **env: str) -> subprocess.Popen[bytes]:
    environment = env_for(
        redis_server,
        GREENQ_ROUTER="tests.support.routers:blocking_router",
        GREENQ_ABANDONED_JOB_SECONDS=str(ABANDONED_AFTER),
        GREENQ_MAINTENANCE_INTERVAL_SECONDS=str(MAINTENANCE),
        GREENQ_METRICS_PORT="0",
        **env,
    )
    # Own process group: a kill takes the worker and its RQ scheduler child, like a container stop.
    return start(["worker", "--name", name], environment)


def batch_of(count: int) -> list[Envelope]:
    text = load_sample("incomingMessageReceived__textMessage.json")
    return [
        Envelope(body=orjson.dumps({**text, "idMessage": f"K{n:04d}"}).decode(), source="webhook")
        for n in range(count)
    ]


def started_jobs(redis: Redis) -> int:
    return len(notification_queue(redis).started_job_registry.get_job_ids())


@pytest.mark.slow
def test_a_killed_workers_batch_is_processed_by_another_worker_once(
    redis_server: LocalRedis, redis_conn: Redis
) -> None:
    redis_conn.set(BLOCK_KEY, 1)
    NotificationQueue(redis_conn).enqueue(batch_of(20))
    first = start_worker(redis_server, "doomed")
    second: subprocess.Popen[bytes] | None = None
    try:
        poll(lambda: started_jobs(redis_conn) == 1, 30, "the first worker to start the batch")
        kill_group(first, signal.SIGKILL)  # mid-batch: nothing of it is committed
        killed_at = time.monotonic()
        redis_conn.delete(BLOCK_KEY)
        second = start_worker(redis_server, "rescuer")
        poll(lambda: len(seen_ids(redis_conn)) >= 20, 90, "another worker to re-run the abandoned batch")
        recovered_in = time.monotonic() - killed_at
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                kill_group(process, signal.SIGTERM)

    assert sorted(seen_ids(redis_conn)) == sorted(f"K{n:04d}" for n in range(20))  # each exactly once
    assert recovered_in < ABANDONED_AFTER + MAINTENANCE + 20
    print(f"worker-kill: 20 notifications, re-run once by another worker {recovered_in:.1f} s after the kill")


@pytest.mark.slow
def test_sigterm_lets_the_worker_finish_its_batch(redis_server: LocalRedis, redis_conn: Redis) -> None:
    redis_conn.set(BLOCK_KEY, 1)
    NotificationQueue(redis_conn).enqueue(batch_of(10))
    worker = start_worker(redis_server, "rolling")
    try:
        poll(lambda: started_jobs(redis_conn) == 1, 30, "the worker to start the batch")
        os.killpg(worker.pid, signal.SIGTERM)  # a rolling restart asks politely...
        redis_conn.delete(BLOCK_KEY)  # ...while the batch is still running
        assert worker.wait(60) == 0
    finally:
        if worker.poll() is None:
            kill_group(worker, signal.SIGKILL)

    assert len(seen_ids(redis_conn)) == 10
    assert started_jobs(redis_conn) == 0


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[LocalRedis]:
    server = LocalRedis(tmp_path / "redis", appendfsync="always").start()
    yield server
    server.stop()


def kill_and_restart(own_redis: LocalRedis, url: str) -> float:
    """SIGKILL Redis (no shutdown, no final fsync), see the ingress go unready, restart Redis on its data;
    the seconds from the kill until the ingress is ready again."""
    assert own_redis.process is not None
    own_redis.process.kill()
    own_redis.process.wait(10)
    killed_at = time.monotonic()
    poll(lambda: httpx.get(f"{url}/readyz", timeout=5).status_code == 503, 30, "readiness to go red")
    restarted = LocalRedis(own_redis.data_dir, port=own_redis.port, password=own_redis.password).start()
    own_redis.process = restarted.process
    poll(lambda: httpx.get(f"{url}/readyz", timeout=5).status_code == 200, 60, "readiness to recover")
    return time.monotonic() - killed_at


def processed_after(own_redis: LocalRedis, accepted: set[str]) -> list[str]:
    """The idMessages the workers processed, once every accepted one is among them (two minutes at most)."""
    redis = Redis.from_url(own_redis.url)

    def all_accepted_processed() -> bool:
        return accepted <= set(stream_ids(redis))

    poll(all_accepted_processed, 120, "every accepted notification to be processed")
    return stream_ids(redis)


@pytest.mark.slow
def test_redis_killed_under_load_loses_nothing_that_was_answered_200(
    own_redis: LocalRedis, tmp_path: Path
) -> None:
    port = free_port()
    env = env_for(
        own_redis,
        GREENQ_ABANDONED_JOB_SECONDS=str(ABANDONED_AFTER),
        GREENQ_MAINTENANCE_INTERVAL_SECONDS=str(MAINTENANCE),
        GREENQ_METRICS_PORT="0",
        GREENQ_REDIS_SOCKET_TIMEOUT="2",
    )
    ingress = start(["ingress", "--port", str(port)], env)
    worker = start(["worker", "--name", "survivor"], env)
    url = f"http://127.0.0.1:{port}"
    load = Deliveries(f"{url}/green-api/webhook/", TOKEN, connections=8, errors_as_status_0=True)
    try:
        wait_for_port("127.0.0.1", port, 30, ingress)
        with load.client, ThreadPoolExecutor(max_workers=8) as pool:
            futures = [pool.submit(load.deliver, item) for item in distinct_bodies(1500)]
            load.wait_for_answers(500)
            ready_after = kill_and_restart(own_redis, url)
            for future in futures:
                future.result()
        processed = processed_after(own_redis, load.accepted)
    finally:
        for process in (ingress, worker):
            stop_process(process, timeout=30)

    accepted, statuses = load.accepted, load.statuses
    report = {"statuses": statuses, "accepted": len(accepted), "ready_after_s": round(ready_after, 1)}
    assert accepted <= set(processed), report  # zero loss among 200s
    assert len(processed) == len(set(processed)), report  # and nothing processed twice
    assert statuses.get(200, 0) > 1000, report
    print(f"redis-kill: {report}")
