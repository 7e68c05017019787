"""A drain that was never queued is found by the workers' sweep at once, not when its flag expires.

A producer sets a partition's *scheduled* flag with its XADDs and queues the drain job in a second round
trip; dying (or losing Redis) in between left the partition without a drain for up to
``SCHEDULED_TTL_SECONDS`` plus a maintenance interval. The flag now holds the drain's job id, so the sweep
can tell a lost drain from a queued one. Real Redis, the real ingress writer, real RQ burst workers.
"""

from __future__ import annotations

import logging
from typing import cast

import pytest
from redis import Redis

from greenq.core import checkpoints, keys, partitions
from greenq.core.contract import Envelope, NotificationQueue
from greenq.core.contract.partitioned import PartitionedQueue
from greenq.core.logs import FIELDS_ATTR
from greenq.local.redis_server import LocalRedis
from greenq.workers.drain_sweep import LOST_DRAIN_GRACE_SECONDS, DrainScheduler
from tests.conftest import DrainFn
from tests.support.crash import SimulatedCrash, crash_once_at
from tests.support.ordering import ORDERED, accept, interleaved, message, seen_by_handler

FLAG = keys.partition_scheduled_key(0)


def age_flag(redis: Redis, seconds: int) -> None:
    """Make partition 0's flag look ``seconds`` old (its TTL is all that tells its age)."""
    assert redis.expire(FLAG, partitions.SCHEDULED_TTL_SECONDS - seconds)


def flag(redis: Redis) -> str | None:
    value = cast(bytes | None, redis.get(FLAG))
    return None if value is None else value.decode()


def queued_ids(redis: Redis) -> list[str]:
    return NotificationQueue(redis).rq_queue.job_ids


def test_a_producer_killed_before_queueing_its_drain_is_drained_by_the_next_sweep(
    redis_server: LocalRedis, redis_conn: Redis, drain: DrainFn, caplog: pytest.LogCaptureFixture
) -> None:
    bodies = interleaved(["a", "b"], 4, {})
    with crash_once_at(checkpoints.ENTRIES_APPENDED) as crashed, pytest.raises(SimulatedCrash):
        accept(redis_server, bodies, flush=len(bodies))
    assert crashed
    lost = flag(redis_conn)
    assert lost is not None  # flagged ...
    assert queued_ids(redis_conn) == []  # ... but no drain job behind it

    # Within the grace the writer may still be about to queue it: nothing is queued twice.
    assert DrainScheduler(redis_conn, 1).sweep() == []
    age_flag(redis_conn, LOST_DRAIN_GRACE_SECONDS)
    with caplog.at_level(logging.INFO, logger="greenq.worker"):
        runtime = drain(**ORDERED)  # the burst worker's maintenance pass sweeps first

    lost_lines = [r for r in caplog.records if r.getMessage().startswith("queued the drain of a partition")]
    assert [(r.levelname, getattr(r, FIELDS_ATTR)["reason"]) for r in lost_lines] == [("WARNING", "lost_job")]
    assert runtime.registry.get_sample_value("greenq_lost_drains_total", {"reason": "lost_job"}) == 1
    order = seen_by_handler(redis_conn)
    assert order[("a", "record")] == order[("b", "record")] == [0, 1, 2, 3]
    assert redis_conn.xlen(keys.partition_stream_key(0)) == 0
    assert flag(redis_conn) is None  # the drain released the partition


def test_the_flag_names_the_drain_each_producer_queued(redis_server: LocalRedis, redis_conn: Redis) -> None:
    accept(redis_server, [message("a", 0)])
    assert queued_ids(redis_conn) == [flag(redis_conn)]

    redis_conn.flushall()
    PartitionedQueue(redis_conn, 1).enqueue([Envelope.of_bytes(message("b", 0), "webhook")])
    assert queued_ids(redis_conn) == [flag(redis_conn)]


def test_a_queued_drain_a_running_one_or_an_old_style_flag_is_left_alone(
    redis_server: LocalRedis, redis_conn: Redis
) -> None:
    accept(redis_server, [message("a", 0)])
    queued = flag(redis_conn)
    age_flag(redis_conn, 50)
    scheduler = DrainScheduler(redis_conn, 1)
    assert scheduler.sweep() == []  # its job exists: it is only waiting for a worker
    assert queued_ids(redis_conn) == [queued]

    redis_conn.delete(NotificationQueue(redis_conn).rq_queue.key, f"rq:job:{queued}")  # now it is lost ...
    redis_conn.set(keys.partition_lease_key(0), "a-running-drain")
    assert scheduler.sweep() == []  # ... but a drain holds the lease, and its release clears the flag

    redis_conn.delete(keys.partition_lease_key(0))
    redis_conn.set(FLAG, 1, ex=partitions.SCHEDULED_TTL_SECONDS - 50)  # written before flags held ids
    assert scheduler.sweep() == []  # it cannot be checked: left to expire, as before
    assert queued_ids(redis_conn) == []


def test_two_workers_sweeping_one_lost_drain_queue_it_once(
    redis_server: LocalRedis, redis_conn: Redis
) -> None:
    with crash_once_at(checkpoints.ENTRIES_APPENDED), pytest.raises(SimulatedCrash):
        accept(redis_server, [message("a", 0)])
    lost = flag(redis_conn)
    age_flag(redis_conn, LOST_DRAIN_GRACE_SECONDS)

    first, second = DrainScheduler(redis_conn, 1), DrainScheduler(redis_conn, 1)
    views = first.read()  # both read the lost flag before either replaces it
    assert first.sweep() == [0]
    assert second._ensure(0, views[0]) is False  # its compare-and-set finds the flag already replaced

    replaced = flag(redis_conn)
    assert replaced not in (None, lost)
    assert queued_ids(redis_conn) == [replaced]
