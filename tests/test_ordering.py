"""Ordered mode (GREENQ_ORDERING=partitioned): per-chat order across retries, dead letters, crashes and
old-format jobs, with a real Redis, the real ingress writer and real RQ burst workers (the other producers:
``tests/test_ordering_producers.py``). Helpers and the effect keys: ``tests.support.ordering``.
"""

from __future__ import annotations

import time

import orjson
from redis import Redis

from greenq.core import checkpoints, keys, partitions
from greenq.core.contract import Envelope, NotificationQueue
from greenq.core.deadletters.store import DeadLetterStore
from greenq.core.settings import WorkerSettings
from greenq.core.status import read_backlog
from greenq.local.redis_server import LocalRedis
from tests.conftest import DrainFn
from tests.support.crash import crash_once_at
from tests.support.ops_cli import Cli
from tests.support.ordering import (
    ORDERED,
    accept,
    chat_key,
    id_of,
    interleaved,
    message,
    parked,
    seen_by_handler,
)


def test_each_chat_is_handled_in_order_across_retries_and_a_dead_letter(
    redis_server: LocalRedis, redis_conn: Redis, drain: DrainFn
) -> None:
    steer = {("a", 3): {"raise": 2}, ("b", 5): {"raise": 99}, ("c", 0): {"raise": 1}}
    accept(redis_server, interleaved(["a", "b", "c"], 12, steer))
    drain(**ORDERED)
    order = seen_by_handler(redis_conn)
    for chat in "abc":
        assert order[(chat, "record")] == list(range(12))
        expected_flaky = [seq for seq in range(12) if (chat, seq) != ("b", 5)]
        assert order[(chat, "flaky")] == expected_flaky  # the retried one ran before its successors
    letters = list(DeadLetterStore(redis_conn).entries())
    assert [(letter.outcome.value, letter.envelope.attempt) for letter in letters] == [("failed", 3)]
    assert redis_conn.xlen(keys.partition_stream_key(0)) == 0
    assert not redis_conn.hlen(keys.partition_held_key(0))


def test_a_held_chat_holds_only_itself(redis_server: LocalRedis, redis_conn: Redis, drain: DrainFn) -> None:
    """With a long backoff (and no scheduler) chat a stays held; chat b, same partition, is all handled."""
    accept(redis_server, interleaved(["a", "b"], 6, {("a", 1): {"raise": 1}}))
    drain(**ORDERED, retry_backoff=[3600.0])
    order = seen_by_handler(redis_conn)
    assert order[("b", "flaky")] == list(range(6))
    assert order[("a", "flaky")] == [0]  # 1 waits for its retry; 2..5 wait behind it, in order
    assert order[("a", "record")] == [0, 1]
    assert redis_conn.hkeys(keys.partition_held_key(0)) == [chat_key("a").encode()]
    assert [id_of(one) for one in parked(redis_conn, "a")] == [f"a-{seq:03d}" for seq in range(1, 6)]


def test_a_held_chat_shows_in_the_gauge_and_in_greenq_status(
    redis_server: LocalRedis, redis_conn: Redis, drain: DrainFn, cli: Cli
) -> None:
    """``greenq_held_chats`` (the worker's scrape-time gauge, alerted by GreenqChatHeldLong) and ``greenq
    status`` count the chat a failing handler holds, and nothing once its retry went through."""
    accept(redis_server, interleaved(["a", "b"], 3, {("a", 1): {"raise": 1}}))
    runtime = drain(**ORDERED, retry_backoff=[3600.0])
    ordered = {"GREENQ_ORDERING": "partitioned", "GREENQ_PARTITIONS": "1"}
    assert runtime.registry.get_sample_value("greenq_held_chats") == 1
    assert "\n  held chats         1 (" in cli("status", env=ordered).out
    assert orjson.loads(cli("status", "--json", env=ordered).out)["held_chats"] == 1

    redis_conn.hset(keys.partition_held_key(0), chat_key("a"), "0")  # its retry is due (no scheduler here)
    assert runtime.context.drain.drain(0, "test-drain") == 2  # a-1 (retried) and a-2 behind it
    assert seen_by_handler(redis_conn)[("a", "flaky")] == [0, 1, 2]
    assert runtime.registry.get_sample_value("greenq_held_chats") == 0
    assert "\n  held chats         0 (" in cli("status", env=ordered).out


def test_a_chat_arriving_while_another_is_held_is_drained_at_once(
    redis_server: LocalRedis, redis_conn: Redis, drain: DrainFn
) -> None:
    """Chat a is held for an hour and its partition has nothing else: the release queues one delayed drain
    for a's retry. Chat b, accepted afterwards into the same partition, still gets a drain of its own now."""
    accept(redis_server, interleaved(["a"], 1, {("a", 0): {"raise": 1}}))
    drain(**ORDERED, retry_backoff=[3600.0])
    assert redis_conn.hlen(keys.partition_held_key(0)) == 1
    assert redis_conn.exists(keys.partition_retry_key(0))
    assert not redis_conn.exists(keys.partition_scheduled_key(0))

    accept(redis_server, interleaved(["b"], 3, {}))
    drain(**ORDERED, retry_backoff=[3600.0])

    order = seen_by_handler(redis_conn)
    assert order[("b", "flaky")] == [0, 1, 2]
    assert order[("a", "record")] == [0]  # still held, waiting for its retry
    assert NotificationQueue(redis_conn).rq_queue.scheduled_job_registry.count == 1  # one delayed drain


def test_a_crash_mid_batch_reprocesses_the_same_entries_in_order_exactly_once(
    redis_server: LocalRedis, redis_conn: Redis, drain: DrainFn
) -> None:
    with crash_once_at(checkpoints.HANDLERS_RAN) as crashed:
        accept(redis_server, interleaved(["a", "b"], 8, {("b", 2): {"raise": 1}}))
        drain(**ORDERED)
    assert crashed
    order = seen_by_handler(redis_conn)
    for chat in "ab":
        assert order[(chat, "flaky")] == list(range(8))
        assert order[(chat, "record")] == list(range(8))
    assert redis_conn.xlen(keys.partition_stream_key(0)) == 0


def test_old_format_jobs_are_still_processed_by_an_ordered_worker(redis_conn: Redis, drain: DrainFn) -> None:
    NotificationQueue(redis_conn).enqueue([Envelope.of_bytes(message("old", 0), "webhook")])
    drain(**ORDERED)
    assert seen_by_handler(redis_conn)[("old", "record")] == [0]


def test_partitions_spread_chats_and_keep_one_hash_tag(worker_settings: WorkerSettings) -> None:
    spread = {partitions.partition_of(f"1101\x1f{chat}@c.us", 16) for chat in range(200)}
    assert spread == set(range(16))
    tag = "{p7}"
    assert all(
        tag in key
        for key in (
            keys.partition_stream_key(7),
            keys.partition_held_key(7),
            keys.partition_scheduled_key(7),
            keys.partition_lease_key(7),
            keys.partition_parked_key(7, "x"),
        )
    )


def test_the_backlog_signal_counts_partition_streams(redis_server: LocalRedis, redis_conn: Redis) -> None:
    """`greenq status`, the queue-depth gauge and KEDA read this: waiting entries, their oldest age."""
    accept(redis_server, interleaved(["a", "b"], 3, {}), count=4)
    drain_jobs = read_backlog(redis_conn).depth  # without partitions: only the RQ queue (drain jobs)
    assert drain_jobs >= 1
    backlog = read_backlog(redis_conn, partition_count=4, now=time.time() + 10)
    assert backlog.depth == 6 + drain_jobs
    assert backlog.oldest_age_seconds >= 10
