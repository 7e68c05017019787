"""Issue 10, defect 5: memory as a designed limit. Real redis-server filled to its ``maxmemory`` (noeviction).

At the limit the ingress answers 503 (never 200), workers back off with a bounded number of log lines, a job
caught in ``rq:wip`` resumes once memory is freed, ``greenq status`` and the worker's metrics still read, and
event streams stay inside their byte budget.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import orjson
import pytest
from redis import Redis
from redis.exceptions import OutOfMemoryError

from greenq.core import keys
from greenq.core.contract import Envelope, NotificationQueue, notification_queue
from greenq.core.deadletters.store import DeadLetterStore
from greenq.core.status import read_outcomes
from greenq.local.procs import stop_process
from greenq.local.redis_server import DEFAULT_MAXMEMORY, LocalRedis
from greenq.local.up import UpOptions
from greenq.workers.metrics import RedisStateCollector
from greenq.workers.redis_outage import RedisOutage
from tests.conftest import TOKEN, DrainFn, load_sample
from tests.support.full_redis import full_redis
from tests.support.ingress import running_ingress
from tests.support.ops_cli import letter
from tests.support.processes import REPO, env_for, poll, run_greenq
from tests.support.raw_http import exchange, status_of
from tests.support.routers import BLOCK_KEY, SEEN_STREAM

TEXT: Final = load_sample("incomingMessageReceived__textMessage.json")
#: Log lines a worker may write over a whole outage: start-up, "lost Redis", RQ's own error report.
MAX_OUTAGE_LINES: Final = 6


def body(n: int) -> str:
    return orjson.dumps({**TEXT, "idMessage": f"MEM{n:06d}"}).decode()


def started_job_ids(redis: Redis) -> list[str]:
    return list(notification_queue(redis).started_job_registry.get_job_ids(cleanup=False))


def refused_writes(redis: Redis) -> int:
    """Commands Redis refused so far (all kinds: RQ's own writes, a worker's write probe)."""
    stats = redis.info("commandstats")
    return sum(int(values.get("rejected_calls", 0)) for values in stats.values())


def outcomes(redis: Redis) -> dict[str, int]:
    return read_outcomes(redis) or {}


@pytest.fixture
def worker_log(tmp_path: Path) -> Path:
    return tmp_path / "worker.log"


def start_worker(redis_server: LocalRedis, log: Path, **env: str) -> subprocess.Popen[bytes]:
    environment = env_for(redis_server, GREENQ_METRICS_PORT="0", **env)
    with log.open("wb") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "greenq", "worker", "--name", "oom-worker"],
            env=environment,
            cwd=REPO,
            stdout=sink,
            stderr=sink,
        )


@pytest.fixture
def stop_after() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        stop_process(process)


def test_every_local_redis_has_a_memory_limit_with_noeviction(redis_conn: Redis) -> None:
    config = LocalRedis(Path("/nonexistent")).config()

    assert f"maxmemory {DEFAULT_MAXMEMORY}" in config
    assert "maxmemory-policy noeviction" in config
    assert UpOptions().maxmemory == DEFAULT_MAXMEMORY
    assert int(str(redis_conn.config_get("maxmemory")["maxmemory"])) > 0  # the test suite's own Redis
    assert redis_conn.config_get("maxmemory-policy")["maxmemory-policy"] == "noeviction"


def test_defect5_the_ingress_answers_503_while_redis_is_full_and_200_after(
    redis_server: LocalRedis, redis_conn: Redis, tmp_path: Path
) -> None:
    queue = NotificationQueue(redis_conn).rq_queue
    request = (
        f"POST /green-api/webhook/ HTTP/1.1\r\nHost: x\r\nAuthorization: {TOKEN}\r\n"
        f"Content-Length: {len(body(1))}\r\nConnection: close\r\n\r\n{body(1)}"
    ).encode()
    ingress = running_ingress(env_for(redis_server), tmp_path / "ingress.log")
    with ingress as (port, _), full_redis(redis_conn) as full:
        refused = [status_of(exchange(port, request)) for _ in range(3)]
        assert queue.count == 0
        full.free()
        accepted = status_of(exchange(port, request))

    assert refused == [503, 503, 503]
    assert accepted == 200
    assert queue.count == 1


def test_defect5_a_worker_backs_off_quietly_while_redis_is_full_then_resumes(
    redis_server: LocalRedis, redis_conn: Redis, worker_log: Path, stop_after: list[subprocess.Popen[bytes]]
) -> None:
    NotificationQueue(redis_conn).enqueue([Envelope(body=body(2), source="webhook")])
    with full_redis(redis_conn) as full:
        baseline = refused_writes(redis_conn)
        stop_after.append(start_worker(redis_server, worker_log))
        # The window: until the worker has tried (and failed) to write several times, backing off.
        poll(lambda: refused_writes(redis_conn) >= baseline + 5, 60, "five refused writes")
        lines = worker_log.read_text().splitlines()
        full.free()
        poll(lambda: outcomes(redis_conn).get("handled") == 1, 60, "the job to run once memory is free")

    assert len(lines) <= MAX_OUTAGE_LINES, "\n".join(lines[:20])
    lost = [line for line in lines if "worker lost Redis" in line]
    assert len(lost) == 1
    assert orjson.loads(lost[0])["reason"] == "full"
    poll(lambda: "Redis accepts writes again" in worker_log.read_text(), 30, "the recovery line")


def test_defect5_a_job_stuck_in_wip_resumes_when_memory_is_freed(
    redis_server: LocalRedis, redis_conn: Redis, worker_log: Path, stop_after: list[subprocess.Popen[bytes]]
) -> None:
    redis_conn.set(BLOCK_KEY, 1)
    NotificationQueue(redis_conn).enqueue([Envelope(body=body(3), source="webhook")])
    stop_after.append(
        start_worker(
            redis_server,
            worker_log,
            GREENQ_ROUTER="tests.support.routers:blocking_router",
            GREENQ_ABANDONED_JOB_SECONDS="5",
            GREENQ_MAINTENANCE_INTERVAL_SECONDS="1",
        )
    )
    poll(lambda: bool(started_job_ids(redis_conn)), 30, "the worker to start the job")
    (job_id,) = started_job_ids(redis_conn)
    with full_redis(redis_conn) as full:
        baseline = refused_writes(redis_conn)
        redis_conn.delete(BLOCK_KEY)  # the handler returns; its commit meets a full Redis
        poll(lambda: refused_writes(redis_conn) > baseline, 60, "the commit to be refused")
        assert started_job_ids(redis_conn) == [job_id]  # still in rq:wip, nothing committed
        assert redis_conn.xlen(SEEN_STREAM) == 0
        full.free()
        poll(lambda: outcomes(redis_conn).get("handled") == 1, 90, "the job to resume")

    assert redis_conn.xlen(SEEN_STREAM) == 1  # the handler's effect exists once
    poll(lambda: not started_job_ids(redis_conn), 30, "rq:wip to empty")
    assert NotificationQueue(redis_conn).rq_queue.count == 0


def test_status_and_worker_metrics_read_while_redis_is_full(
    redis_server: LocalRedis, redis_conn: Redis
) -> None:
    NotificationQueue(redis_conn).enqueue([Envelope(body=body(4), source="webhook")])
    DeadLetterStore(redis_conn).add(letter())
    # A worker that died without unregistering: reading the workers removes it (SREM works when full).
    redis_conn.sadd(keys.WORKERS_SET, "rq:worker:gone")
    with full_redis(redis_conn):
        status = run_greenq(["status", "--json"], env_for(redis_server))
        gauges = {
            sample.name: sample.value
            for family in RedisStateCollector(redis_conn).collect()
            for sample in family.samples
        }

    assert status.returncode == 0, status.stderr
    report = orjson.loads(status.stdout)
    assert report["backlog"]["depth"] == 1
    assert report["dead_letters"]["total"] == 1
    assert report["workers"] == []
    assert report["memory"]["used_bytes"] >= report["memory"]["max_bytes"] > 0
    assert gauges["greenq_redis_up"] == 1
    # What GreenqRedisMemoryFull computes (deploy/prometheus/alerts.yml): at or over 98 %.
    assert gauges["greenq_redis_memory_used_bytes"] / gauges["greenq_redis_memory_max_bytes"] >= 0.98


def test_event_streams_stay_within_their_byte_budget(redis_conn: Redis, drain: DrainFn) -> None:
    budget = 256 * 1024
    queue = NotificationQueue(redis_conn)
    for start in range(0, 3000, 100):
        queue.enqueue([Envelope(body=body(n), source="webhook") for n in range(start, start + 100)])

    drain(stream_max_bytes=budget)

    stream = keys.event_stream("incomingMessageReceived")
    assert redis_conn.xlen(stream) < 3000
    assert int(redis_conn.memory_usage(stream, samples=0) or 0) <= 1.25 * budget


class FlakyRedis:
    """Refuses writes (OOM) until ``full`` is cleared; counts the worker's write probes."""

    def __init__(self) -> None:
        self.full = True
        self.probes = 0

    def set(self, *args: object, **kwargs: object) -> None:
        self.probes += 1
        if self.full:
            raise OutOfMemoryError("command not allowed when used memory > 'maxmemory'.")


def test_a_day_long_outage_logs_a_bounded_number_of_lines(caplog: pytest.LogCaptureFixture) -> None:
    """Simulated clock: Redis full for a day, then writable for 100 s while the work loop keeps failing."""
    day = 24 * 3600.0
    now = [0.0]
    redis = FlakyRedis()

    def sleep(seconds: float) -> None:
        now[0] += seconds
        redis.full = not day <= now[0] < day + 100

    outage = RedisOutage(worker="w", clock=lambda: now[0], sleep=sleep)
    with caplog.at_level(logging.INFO, logger="greenq.worker"):
        for _ in range(6):  # the first outage, then five flaps: the new loop fails again at once
            outage.failed(OutOfMemoryError("full"))
            outage.wait(redis)  # type: ignore[arg-type]

    messages = [record.getMessage() for record in caplog.records]
    assert messages.count("worker lost Redis") == 1
    assert messages.count("Redis accepts writes again; restarting the work loop") == 1
    assert len(messages) <= 40, messages  # reminders at doubling intervals, never one per retry
    assert redis.probes <= day / outage.cap + 20  # probes spaced by the capped backoff
