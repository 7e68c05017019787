"""Ordered mode: a batch whose commit is retried keeps each chat's order and its parked and held keys whole.

The commit retries its MULTI/EXEC when a WATCHed claim changed between the decisions and EXEC (EXEC refused,
nothing applied) and when EXEC's reply is lost (applied, but the worker cannot know). Both are forced here,
deterministically, on the first commit of a drain: another client touches a claim key of the batch (SET and
DEL, so its value stays absent) at the ``handlers-ran`` checkpoint, or the Redis proxy executes EXEC and
drops its reply. The chat ``a`` under test has a held head with parked entries, or gets one, or is emptied,
in that batch; ``b`` shares its partition. Afterwards: the parked and held keys say exactly what waits, and
once chat ``a`` is due again every handler saw every notification once, in each chat's order.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import orjson
import pytest
from prometheus_client import CollectorRegistry
from redis import Redis

from greenq.core import checkpoints, keys
from greenq.core.settings import WorkerSettings
from greenq.local.redis_server import LocalRedis
from greenq.workers import drain as drain_module
from greenq.workers.dedup import identity
from greenq.workers.drain import PartitionDrain
from greenq.workers.metrics import WorkerMetrics
from greenq.workers.processing import Processor
from greenq.workers.router import load_router
from greenq.workers.validation import NotificationValidator
from tests.support.effects import effects
from tests.support.ordering import accept, chat_key, id_of, message, parked, seen_by_handler
from tests.support.redis_proxy import Fault, RedisProxy

HELD = keys.partition_held_key(0)


@dataclass(frozen=True)
class Scenario:
    """``before`` is drained first (with an hour's backoff, so a failed head keeps ``a`` held); then chat
    ``a`` is made due, ``during`` is accepted and drained with the fault on its first commit."""

    before: list[bytes]
    during: list[bytes]
    touched: str  #: the notification (in the faulted batch, not yet claimed) whose claim key is touched
    parked_after: list[tuple[str, int]]  #: (idMessage, attempt) waiting in a's parked list after the fault
    batch: int = drain_module.BATCH


def a(seq: int, fails: int = 0) -> bytes:
    return message("a", seq, **({"raise": fails} if fails else {}))


def b(seq: int) -> bytes:
    return message("b", seq)


SCENARIOS = {
    # a-0 fails in the faulted batch itself: a becomes held, a-1 and a-2 park behind it.
    "new-retry": Scenario(
        [], [a(0, 1), b(0), a(1), b(1), a(2)], "b-000", [("a-000", 2), ("a-001", 1), ("a-002", 1)]
    ),
    # a's held head fails again; a-2 (from the stream) parks behind a-1.
    "held-head-fails-again": Scenario(
        [a(0, 2), a(1), b(0)], [a(2), b(1)], "b-001", [("a-000", 3), ("a-001", 1), ("a-002", 1)]
    ),
    # a's head succeeds, but its parked list is longer than a batch: the batch pops only part of it.
    "more-parked-than-a-batch": Scenario(
        [a(0, 1), a(1), a(2), a(3), a(4), b(0)], [a(5), b(1)], "a-001", [], batch=3
    ),
    # a's parked list is emptied in the batch, and a's next message (from the stream) follows in it.
    "emptied": Scenario([a(0, 1), a(1), a(2), b(0)], [a(3), b(1)], "a-003", []),
}


@pytest.fixture
def proxy(redis_server: LocalRedis) -> Iterator[RedisProxy]:
    proxy = RedisProxy("127.0.0.1", redis_server.port)
    yield proxy
    proxy.close()


@pytest.fixture
def drainer(redis_server: LocalRedis, worker_settings: WorkerSettings, proxy: RedisProxy) -> PartitionDrain:
    """The worker's drain, talking to Redis through the proxy; retries wait an hour unless made due."""
    settings = worker_settings.model_copy(
        update={"router": "tests.support.effects:router", "max_retries": 2, "retry_backoff": [3600.0]}
    )
    validator = NotificationValidator()
    metrics = WorkerMetrics.create(CollectorRegistry(), validator.known_webhook_types)
    proxied = Redis.from_url(proxy.url(redis_server.password), socket_timeout=5)
    processor = Processor(settings, proxied, load_router(settings.router), validator, metrics)
    return PartitionDrain(processor, proxied, 1)


@pytest.fixture
def no_hook() -> Iterator[None]:
    yield
    checkpoints.install(None)


def drain_until_idle(drainer: PartitionDrain) -> None:
    for _ in range(50):
        if not drainer.drain(0, "test-drain"):
            return
    raise AssertionError("the partition did not settle")


def make_due(redis: Redis) -> None:
    if redis.hexists(HELD, chat_key("a")):
        redis.hset(HELD, chat_key("a"), "0")


def conflict_before_exec(redis: Redis, touched: str) -> Fault:
    """At the next ``handlers-ran`` (decisions made, MULTI not sent), another client touches the dedup
    claim of ``touched``: SET then DEL, so the claim stays absent but the batch's EXEC is refused."""
    chat, seq = touched.split("-")
    key = keys.dedup_key(str(identity(orjson.loads(message(chat, int(seq))), "")))
    record = Fault("handlers-ran", "drop")

    def hook(name: str) -> None:
        if name != checkpoints.HANDLERS_RAN or record.fired.is_set():
            return
        assert not redis.exists(key), "the touched claim must be unclaimed (and watched) in this batch"
        redis.set(key, "touch")
        redis.delete(key)
        record.fired.set()

    checkpoints.install(hook)
    return record


@pytest.mark.parametrize("fault", ["watch-conflict", "exec-reply-lost"])
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_a_retried_commit_keeps_the_chat_in_order_and_its_parked_keys_whole(
    name: str,
    fault: str,
    redis_server: LocalRedis,
    redis_conn: Redis,
    drainer: PartitionDrain,
    proxy: RedisProxy,
    monkeypatch: pytest.MonkeyPatch,
    no_hook: None,
) -> None:
    scenario = SCENARIOS[name]
    monkeypatch.setattr(drain_module, "BATCH", scenario.batch)
    accept(redis_server, scenario.before)
    drain_until_idle(drainer)
    make_due(redis_conn)
    accept(redis_server, scenario.during)
    if fault == "watch-conflict":
        fired = conflict_before_exec(redis_conn, scenario.touched)
    else:
        fired = proxy.add(Fault("EXEC", "drop"))
    drain_until_idle(drainer)
    checkpoints.install(None)
    assert fired.fired.is_set()

    waiting = [(id_of(one), one.attempt) for one in parked(redis_conn, "a")]
    assert waiting == scenario.parked_after
    assert redis_conn.hkeys(HELD) == ([chat_key("a").encode()] if waiting else [])

    make_due(redis_conn)
    drain_until_idle(drainer)
    everything = [str(orjson.loads(body)["idMessage"]) for body in scenario.before + scenario.during]
    order = seen_by_handler(redis_conn)
    for chat in "ab":
        accepted = sorted(int(key[2:]) for key in everything if key.startswith(chat))
        assert order[(chat, "record")] == order[(chat, "flaky")] == accepted, chat
    assert set(Counter(effects(redis_conn)).values()) == {1}  # exactly once (each also in order above)
    assert redis_conn.hget(keys.OUTCOME_COUNTS, "handled") == str(len(everything)).encode()
    assert not redis_conn.exists(HELD, keys.partition_parked_key(0, chat_key("a")))
    assert redis_conn.xlen(keys.partition_stream_key(0)) == 0
