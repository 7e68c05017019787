"""Switching a running deployment between ``GREENQ_ORDERING=jobs`` and ``partitioned`` (README: Ordering).

During a rolling switch producers and workers disagree: an ingress still writes RQ batch jobs while another
writes partition streams, and a worker of either mode picks up whatever RQ hands it. Nothing may be lost or
stuck: every worker runs both kinds of job (a batch, a partition's drain) and, whatever its own mode, the
maintenance sweep that queues the drain of a partition whose drain job was lost. Order holds for what is
accepted once every process writes partitions.
"""

from __future__ import annotations

import subprocess
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx2 as httpx
import pytest
from redis import Redis

from greenq.core import keys
from greenq.core.contract import Envelope, NotificationQueue
from greenq.core.settings import WorkerSettings
from greenq.local.procs import stop_process
from greenq.local.redis_server import LocalRedis
from tests.conftest import TOKEN, DrainFn
from tests.support.effects import effects
from tests.support.ingress import running_ingress
from tests.support.ordering import accept, message, queued_functions, seen_by_handler, store_without_drain
from tests.support.processes import env_for, poll, start

ROUTER = "tests.support.effects:router"
HANDLERS = ("record", "flaky")  # the effects router runs both on every notification
CHATS = ("a", "b", "c", "d", "e")
#: The partition count of a process that sets none.
PARTITIONS: int = WorkerSettings.model_fields["partitions"].default


def post(port: int, chat: str, seq: int) -> None:
    response = httpx.post(
        f"http://127.0.0.1:{port}/green-api/webhook/",
        content=message(chat, seq),
        headers={"Authorization": TOKEN},
        timeout=30,
    )
    assert response.status_code == 200, response.text


def post_all(port: int, seqs: range) -> None:
    """Each chat's messages ``seqs``, chats interleaved, one request at a time (GREEN API's pace)."""
    for seq in seqs:
        for chat in CHATS:
            post(port, chat, seq)


@contextmanager
def worker(redis_server: LocalRedis, ordering: str) -> Iterator[subprocess.Popen[bytes]]:
    """A real ``greenq worker`` in ``ordering`` mode, stopped (warm: it finishes its job) on exit."""
    env = env_for(
        redis_server,
        GREENQ_ORDERING=ordering,
        GREENQ_ROUTER=ROUTER,
        GREENQ_METRICS_PORT="0",
        GREENQ_MAINTENANCE_INTERVAL_SECONDS="1",
    )
    process = start(["worker"], env)
    try:
        yield process
    finally:
        stop_process(process)


def everything_handled(redis: Redis, count: int) -> bool:
    waiting = sum(int(redis.xlen(keys.partition_stream_key(p))) for p in range(PARTITIONS))
    return len(effects(redis)) >= count * len(HANDLERS) and not waiting and not queued_functions(redis)


@pytest.mark.slow
def test_a_rolling_switch_from_jobs_to_partitioned_handles_every_notification_once(
    redis_server: LocalRedis, redis_conn: Redis, tmp_path: Path
) -> None:
    """Old world (a jobs-mode ingress, batch jobs left waiting), mixed world (one ingress and one worker of
    each mode, both ingresses taking traffic), new world (only partitioned processes)."""
    with ExitStack() as stack:
        old_ingress = stack.enter_context(
            running_ingress(env_for(redis_server, GREENQ_ORDERING="jobs"), tmp_path / "old-ingress.log")
        )
        new_ingress = stack.enter_context(
            running_ingress(
                env_for(redis_server, GREENQ_ORDERING="partitioned"), tmp_path / "new-ingress.log"
            )
        )
        post_all(old_ingress[0], range(0, 4))  # no worker yet: batch jobs wait in the queue
        assert set(queued_functions(redis_conn)) == {keys.JOB_FUNCTION}
        new_worker = stack.enter_context(worker(redis_server, "partitioned"))
        with worker(redis_server, "jobs"):
            for seq in range(4, 10):  # both ingresses take traffic, chat by chat
                for chat in CHATS:
                    post((old_ingress if (seq + ord(chat)) % 2 else new_ingress)[0], chat, seq)
            stop_process(old_ingress[1])  # the switch completes: only partitioned processes remain
        post_all(new_ingress[0], range(10, 16))
        total = len(CHATS) * 16
        poll(lambda: everything_handled(redis_conn, total), 60, "every notification to be handled")
        assert new_worker.poll() is None

    assert Counter(effects(redis_conn)) == {
        (f"{chat}-{seq:03d}", handler): 1 for chat in CHATS for seq in range(16) for handler in HANDLERS
    }
    # Accepted after every process wrote partitions: in order, per chat and handler.
    for (chat, handler), seqs in seen_by_handler(redis_conn).items():
        after = [seq for seq in seqs if seq >= 10]
        assert after == list(range(10, 16)), (chat, handler, seqs)


def test_a_jobs_mode_worker_queues_the_drain_of_a_partition_whose_drain_job_was_lost(
    redis_conn: Redis, drain: DrainFn
) -> None:
    """An ingress in ordered mode stored entries but could not queue their drain job (a Redis error after the
    XADDs). Only the workers' maintenance sweep schedules that partition; a jobs-mode worker runs it too."""
    envelopes = [Envelope.of_bytes(message(chat, seq), "webhook") for seq in range(3) for chat in CHATS]
    store_without_drain(redis_conn, envelopes, PARTITIONS)
    assert not queued_functions(redis_conn)  # no drain job, no scheduled flag

    drain(ordering="jobs", router=ROUTER)  # a burst worker: maintenance first, then every job it queued

    assert Counter(effects(redis_conn)) == {
        (f"{chat}-{seq:03d}", handler): 1 for chat in CHATS for seq in range(3) for handler in HANDLERS
    }
    assert not any(redis_conn.xlen(keys.partition_stream_key(p)) for p in range(PARTITIONS))


@pytest.mark.parametrize("ordering", ["jobs", "partitioned"])
def test_a_worker_of_either_mode_runs_both_kinds_of_job(
    redis_server: LocalRedis, redis_conn: Redis, drain: DrainFn, ordering: str
) -> None:
    """Leftover batch jobs after a switch to partitioned, and drain jobs queued while a worker still runs
    jobs mode (or after a switch back): one burst worker of ``ordering`` handles both, each once."""
    NotificationQueue(redis_conn).enqueue(
        [Envelope.of_bytes(message("a", seq), "webhook") for seq in range(3)]
    )
    accept(redis_server, [message("b", seq) for seq in range(3)], count=PARTITIONS)
    assert set(queued_functions(redis_conn)) == {keys.JOB_FUNCTION, keys.DRAIN_FUNCTION}

    drain(ordering=ordering, router=ROUTER)

    assert Counter(effects(redis_conn)) == {
        (f"{chat}-{seq:03d}", handler): 1 for chat in "ab" for seq in range(3) for handler in HANDLERS
    }
    assert not queued_functions(redis_conn)
