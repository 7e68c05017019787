"""``greenq status`` against a real redis-server, with real RQ workers and registries."""

from __future__ import annotations

import os
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from redis import Redis
from rq import get_current_job
from rq.job import Job
from rq.utils import utcformat

from greenq.cli.status_text import render_text
from greenq.core import keys
from greenq.core.contract import Envelope, NotificationQueue
from greenq.core.deadletters.store import DeadLetterStore
from greenq.core.outcomes import Outcome
from greenq.core.settings import CommonSettings
from greenq.core.status import Status, read_backlog, read_status
from greenq.local.procs import free_port
from greenq.local.redis_server import LocalRedis
from greenq.workers.jobs import WorkerContext
from tests.conftest import SAMPLES_DIR, DrainFn
from tests.support.ops_cli import Cli, letter
from tests.support.ordering import accept
from tests.support.processes import GREENQ, REPO, clean_env, run_greenq, subprocess_env

TEXT = (SAMPLES_DIR / "incomingMessageReceived__textMessage.json").read_text()
#: The partition count of a command that sets none.
DEFAULT_PARTITIONS: int = CommonSettings.model_fields["partitions"].default

#: What ``observe_status`` saw while it was the running job.
observed: list[tuple[str, Status]] = []


def observe_status(ctx: WorkerContext) -> None:
    """An RQ job that reads the status from inside a worker, while that worker is busy with it (a greenq
    worker hands every job its context first)."""
    job = get_current_job()
    assert job is not None
    observed.append((job.id, read_status(job.connection)))


def explode(ctx: WorkerContext) -> None:
    """An RQ job that crashes (a bug outside greenq's handlers), so it lands in RQ's failed registry."""
    raise RuntimeError("crash outside the handlers")


def envelope() -> list[Envelope]:
    return [Envelope(body=TEXT, source="webhook")]


def test_status_reports_backlog_retries_failures_dead_letters_and_outcomes(
    redis_conn: Redis, drain: DrainFn
) -> None:
    queue = NotificationQueue(redis_conn)
    queue.rq_queue.enqueue("tests.test_status.explode", result_ttl=0)
    drain()  # the crash goes to RQ's failed registry
    oldest = queue.enqueue(envelope())
    queue.enqueue(envelope())
    queue.enqueue(envelope())
    hour_ago = datetime.now(UTC) - timedelta(hours=1)
    redis_conn.hset(Job.key_for(oldest), "enqueued_at", utcformat(hour_ago))
    queue.enqueue(envelope(), delay=600)  # a retry waiting for the scheduler
    store = DeadLetterStore(redis_conn)
    for outcome in (Outcome.INVALID, Outcome.INVALID, Outcome.UNKNOWN_TYPE):
        store.add(letter(outcome))
    redis_conn.hset(keys.OUTCOME_COUNTS, mapping={"handled": 7, "invalid": 2})

    status = read_status(redis_conn)

    assert status.queue == "greenq-notifications"
    assert status.backlog.depth == 3
    assert 3590 < status.backlog.oldest_age_seconds < 3700
    assert (status.scheduled, status.started, status.failed) == (1, 0, 1)
    assert status.workers == []  # the burst worker has gone
    assert status.dead_letters.total == 3
    assert status.dead_letters.by_outcome == {"invalid": 2, "unknown_type": 1}
    assert status.dead_letters.complete
    assert status.outcomes == {"handled": 7, "invalid": 2}


def test_outcome_counts_come_from_the_workers(redis_conn: Redis, drain: DrainFn) -> None:
    call = (SAMPLES_DIR / "incomingCall__default.json").read_text()
    queue = NotificationQueue(redis_conn)
    queue.enqueue([*envelope(), Envelope(body=call, source="webhook")])
    queue.enqueue([Envelope(body='{"typeWebhook": "incomingCall"}', source="webhook")])
    assert read_status(redis_conn).outcomes is None

    drain()

    status = read_status(redis_conn)
    assert status.outcomes == {"handled": 2, "invalid": 1}
    assert status.dead_letters.by_outcome == {"invalid": 1}


def test_status_sees_a_busy_worker_with_its_started_job(redis_conn: Redis, drain: DrainFn) -> None:
    observed.clear()
    job = NotificationQueue(redis_conn).rq_queue.enqueue("tests.test_status.observe_status", result_ttl=0)

    drain()

    [(job_id, status)] = observed
    assert job_id == job.id
    assert status.started == 1
    [worker] = status.workers
    assert worker.state == "busy"
    assert worker.current_job == job.id
    assert worker.heartbeat_age_seconds is not None
    assert 0 <= worker.heartbeat_age_seconds < 30
    assert worker.pid == os.getpid()
    assert worker.last_heartbeat is not None


def test_empty_queue_has_no_age(redis_conn: Redis) -> None:
    backlog = read_backlog(redis_conn)

    assert (backlog.depth, backlog.oldest_age_seconds) == (0, 0.0)


def test_dead_letter_split_says_when_it_is_partial(redis_conn: Redis) -> None:
    store = DeadLetterStore(redis_conn)
    for outcome in (Outcome.FAILED, Outcome.INVALID, Outcome.INVALID):
        store.add(letter(outcome))

    status = read_status(redis_conn, scan_limit=2)

    assert status.dead_letters.total == 3
    assert status.dead_letters.by_outcome == {"failed": 1, "invalid": 1}
    assert not status.dead_letters.complete
    assert "(of the oldest 2)" in render_text(status)


#: Every key of ``greenq status --json``.
STATUS_JSON_KEYS = {
    "queue",
    "backlog",
    "held_chats",
    "scheduled",
    "started",
    "failed",
    "failed_oldest_age_seconds",
    "workers",
    "dead_letters",
    "outcomes",
    "memory",
    "read_at",
}


@pytest.mark.parametrize("ordering", ["partitioned", "jobs"])
def test_status_command_human_and_json(
    cli: Cli, redis_server: LocalRedis, redis_conn: Redis, ordering: str
) -> None:
    """Whatever the command's own mode, both kinds of waiting work count: a batch job (a producer in jobs
    mode) and a partition entry (the default), as during a rolling switch."""
    NotificationQueue(redis_conn).enqueue(envelope())
    accept(redis_server, [TEXT.encode()], count=DEFAULT_PARTITIONS)
    DeadLetterStore(redis_conn).add(letter(Outcome.FAILED))
    env = {"GREENQ_ORDERING": ordering}

    human = cli("status", env=env)
    machine = cli("status", "--json", env=env)

    assert human.code == machine.code == 0
    text = human.out
    for line in (
        "queue greenq-notifications",
        "  waiting            3 (oldest ",  # the batch job, the partition entry and its drain job
        "  held chats         0 (each waits for a retry of its failed notification)",
        "  scheduled retries  0",
        "  started            0",
        "  failed (RQ)        0",
        "workers alive        0",
        "dead letters         1",
        "  failed             1",
        "outcomes             not recorded (greenq:outcomes is empty)",
    ):
        assert line in text, text
    data = orjson.loads(machine.out)
    assert set(data) == STATUS_JSON_KEYS
    assert data["backlog"]["depth"] == 3
    assert data["dead_letters"] == {"total": 1, "by_outcome": {"failed": 1}, "complete": True}
    assert data["outcomes"] is None
    assert data["held_chats"] == 0


def test_status_lists_a_running_worker_process(redis_server: LocalRedis, redis_conn: Redis) -> None:
    env = subprocess_env(redis_server, GREENQ_METRICS_PORT="0")
    worker = subprocess.Popen(
        [*GREENQ, "worker", "--name", "status-probe"],
        env=env,
        cwd=REPO,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = datetime.now(UTC) + timedelta(seconds=30)
        workers = read_status(redis_conn).workers
        # A worker registers as "started" and turns "idle" once it waits for jobs: wait for that.
        while not (workers and workers[0].state == "idle") and datetime.now(UTC) < deadline:
            time.sleep(0.05)
            workers = read_status(redis_conn).workers
        result = run_greenq(["status"], env)
    finally:
        worker.terminate()
        worker.wait(30)

    [view] = workers
    assert (view.name, view.state, view.current_job, view.pid) == ("status-probe", "idle", None, worker.pid)
    assert result.returncode == 0, result.stderr
    assert "workers alive        1" in result.stdout
    assert "  status-probe  idle  job -  heartbeat " in result.stdout


def test_unreachable_redis_is_exit_3_without_echoing_the_password(tmp_path: Path) -> None:
    password = "hunter2-do-not-print"
    env = clean_env(
        GREENQ_REDIS_URL=f"redis://:{password}@127.0.0.1:{free_port()}/0", GREENQ_REDIS_SOCKET_TIMEOUT="1"
    )

    for command in (["status"], ["status", "--json"], ["dlq", "list"]):
        result = run_greenq(command, env, cwd=tmp_path)
        assert result.returncode == 3, result.stderr
        assert "greenq: Redis error: ConnectionError" in result.stderr
        assert password not in result.stdout + result.stderr


@pytest.fixture(autouse=True)
def _forget_observations() -> None:
    observed.clear()
