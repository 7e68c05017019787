"""SIGKILL at each named step of a batch and of a replay, in real processes; effects must apply once.

A worker (``greenq worker`` with ``tests.support.effects:router``) kills its own process group the first
time it reaches the checkpoint under test (``GREENQ_TEST_CRASH_AT``, see ``tests.support.crash``); a
restarted worker recovers the abandoned job. Afterwards: every effect exactly once, every notification one
outcome, queue and RQ registries drained, nothing in the failed registry.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import cast

import orjson
import pytest
from redis import Redis
from rq import Worker

from greenq.core import checkpoints, keys
from greenq.core.contract import Envelope, NotificationQueue, notification_queue
from greenq.core.deadletters.store import DeadLetterStore
from greenq.local.redis_server import LocalRedis
from tests.conftest import DrainFn, load_sample
from tests.support.crash_workers import doomed_then_rescued, worker_env
from tests.support.effects import effects
from tests.support.processes import REPO, poll

ROUTER = "tests.support.effects:router"
TEXT = load_sample("incomingMessageReceived__textMessage.json")


def body(id_message: str, **test: object) -> str:
    return orjson.dumps({**TEXT, "idMessage": id_message, **({"test": test} if test else {})}).decode()


def settled(redis: Redis) -> bool:
    """Every job finished: jobs are deleted when they succeed (``result_ttl=0``), failed ones are kept."""
    return not redis.keys("rq:job:*") or bool(failed_jobs(redis))


def failed_jobs(redis: Redis) -> list[str]:
    return list(notification_queue(redis).failed_job_registry.get_job_ids())


def failed_runs(redis: Redis, worker_name: str) -> int:
    """Job runs that raised in this worker (RQ counts them in the worker's own hash)."""
    return int(redis.hget(f"{Worker.redis_worker_namespace_prefix}{worker_name}", "failed_job_count") or 0)


def outcome_counts(redis: Redis) -> dict[str, int]:
    raw = cast(dict[bytes, bytes], redis.hgetall(keys.OUTCOME_COUNTS))
    return {key.decode(): int(value) for key, value in raw.items() if int(value)}


@pytest.mark.slow
@pytest.mark.parametrize(
    "point", [checkpoints.HANDLERS_RAN, checkpoints.COMMITTED, checkpoints.RETRY_SCHEDULED]
)
def test_a_worker_killed_at_each_step_of_a_batch_leaves_every_effect_exactly_once(
    redis_server: LocalRedis,
    redis_conn: Redis,
    tmp_path: Path,
    point: str,
) -> None:
    NotificationQueue(redis_conn).enqueue(
        [
            Envelope(body=body("PLAIN"), source="webhook"),
            Envelope(body=body("RETRIED", **{"raise": 1}), source="webhook"),
        ]
    )
    marker = tmp_path / "crashed"
    env = worker_env(redis_server, ROUTER, f"{point}:1", marker)
    with doomed_then_rescued(env, marker, point):
        poll(
            lambda: len(effects(redis_conn)) >= 4 and settled(redis_conn),
            90,
            "the rescuer to finish the work",
        )
        assert failed_runs(redis_conn, "rescuer") == 0  # e.g. RQ's success step did not raise on the re-run

    assert Counter(effects(redis_conn)) == {
        ("PLAIN", "record"): 1,
        ("PLAIN", "flaky"): 1,
        ("RETRIED", "record"): 1,
        ("RETRIED", "flaky"): 1,
    }
    assert outcome_counts(redis_conn) == {"handled": 2}
    assert failed_jobs(redis_conn) == []
    assert DeadLetterStore(redis_conn).size() == 0


REPLAY = (
    "import sys; from tests.support import crash; crash.install_from_env(); "
    "from greenq.cli.main import main; sys.exit(main(['dlq', 'replay', '--all']))"
)


@pytest.mark.slow
@pytest.mark.parametrize("point", [checkpoints.REPLAY_LOCKED, checkpoints.REPLAY_COMMITTED])
def test_a_replay_killed_midway_replays_the_dead_letter_exactly_once(
    redis_server: LocalRedis, redis_conn: Redis, drain: DrainFn, tmp_path: Path, point: str
) -> None:
    NotificationQueue(redis_conn).enqueue([Envelope(body=body("DEAD", **{"raise": 9}), source="webhook")])
    drain(router=ROUTER, max_retries=0)
    assert DeadLetterStore(redis_conn).size() == 1
    env = worker_env(redis_server, ROUTER, f"{point}:1", tmp_path / "crashed")

    def replay_cli() -> int:
        return subprocess.run(
            [sys.executable, "-c", REPLAY], env=env, cwd=REPO, start_new_session=True, check=False
        ).returncode

    assert replay_cli() == -signal.SIGKILL
    poll(lambda: not redis_conn.keys(f"{keys.REPLAY_LOCK_PREFIX}*"), 30, "the dead replayer's lock to expire")
    replay_cli()  # the operator runs it again; it replays what is still there
    drain(router=ROUTER, max_retries=0)

    assert effects(redis_conn) == [("DEAD", "record"), ("DEAD", "flaky")]
    assert DeadLetterStore(redis_conn).size() == 0
    assert outcome_counts(redis_conn) == {"failed": 1, "handled": 1}
