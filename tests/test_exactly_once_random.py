"""Randomized schedules under random faults; the exactly-once invariant is checked from Redis after each.

Long-lived parts are shared by every seed: two real ``greenq ingress`` processes (B talks to Redis through a
fault proxy), one in-process RQ worker whose processor talks to Redis through another proxy. Per seed:
FLUSHALL, a random schedule (``tests.support.schedule``: messages, state changes, quota notices without a
timestamp, retried and failing handlers, poison and unknown bodies, copies through the other ingress,
resends after a drain), and random faults: the ingress's EXEC reply lost (503, write landed; GREEN API
resends), the worker's commit reply lost, the worker's claim read dropped, and a crash (the batch aborted)
at a named checkpoint. Then: outcomes, effects and dead letters exactly as expected, queue drained, RQ's
failed registry empty. ``GREENQ_RANDOM_SEEDS`` / ``GREENQ_RANDOM_FIRST_SEED`` choose the seeds;
``GREENQ_RANDOM_TALLY=<file>`` writes the figures.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import httpx2 as httpx
import orjson
import pytest
from prometheus_client import CollectorRegistry
from redis import Redis

from greenq.core import checkpoints, keys, partitions
from greenq.core.contract import SERIALIZER, notification_queue
from greenq.core.deadletters.store import DeadLetterStore
from greenq.core.settings import WorkerSettings
from greenq.local.procs import free_port, wait_for_port
from greenq.local.redis_server import LocalRedis
from greenq.workers.drain import PartitionDrain
from greenq.workers.jobs import WorkerContext
from greenq.workers.metrics import WorkerMetrics
from greenq.workers.processing import Processor
from greenq.workers.router import load_router
from greenq.workers.rq_worker import GreenqWorker
from greenq.workers.validation import NotificationValidator
from tests.conftest import TOKEN, load_sample
from tests.support.effects import effects
from tests.support.processes import clean_env, kill_group, start
from tests.support.redis_proxy import Fault, RedisProxy
from tests.support.schedule import MAX_RETRIES, Planned, Schedule, expected_effects, expected_outcomes, plan

SEEDS = int(os.environ.get("GREENQ_RANDOM_SEEDS", "500"))
FIRST_SEED = int(os.environ.get("GREENQ_RANDOM_FIRST_SEED", "0"))
CRASH_POINTS = (checkpoints.HANDLERS_RAN, checkpoints.COMMITTED, checkpoints.RETRY_SCHEDULED)
PARTITIONS = 2  # ordered mode: few partitions, so chats share them
MESSAGE = load_sample("incomingMessageReceived__textMessage.json")
STATE = load_sample("stateInstanceChanged__default.json")
QUOTA = load_sample("quotaExceeded__default.json")


class QuietWorker(GreenqWorker):
    """No pub/sub command listener: stopping its thread costs 0.1 s per burst, twice per seed."""

    def subscribe(self) -> None:
        pass

    def unsubscribe(self) -> None:
        pass


class SimulatedCrash(RuntimeError):
    """Raised at a checkpoint: the batch stops there, as if the worker died; RQ re-runs the job."""


@dataclass
class Rig:
    redis: Redis
    ingress_urls: list[str]
    ingress_proxy: RedisProxy
    worker_proxy: RedisProxy
    worker: GreenqWorker
    client: httpx.Client
    ordered: bool = False  # GREENQ_ORDERING=partitioned (else jobs): per-chat order joins the invariant
    tally: Counter[str] = field(default_factory=Counter)
    accepted_order: list[str] = field(default_factory=list)  # keys in the order their copies were stored


@pytest.fixture
def rig(redis_server: LocalRedis, worker_settings: WorkerSettings) -> Iterator[Rig]:
    yield from make_rig(redis_server, worker_settings, ordered=False)


@pytest.fixture
def ordered_rig(redis_server: LocalRedis, worker_settings: WorkerSettings) -> Iterator[Rig]:
    yield from make_rig(redis_server, worker_settings, ordered=True)


def make_rig(redis_server: LocalRedis, worker_settings: WorkerSettings, ordered: bool) -> Iterator[Rig]:
    ingress_proxy = RedisProxy("127.0.0.1", redis_server.port)
    worker_proxy = RedisProxy("127.0.0.1", redis_server.port)
    ports = [free_port(), free_port()]
    ingresses = start_ingresses(redis_server, ingress_proxy, ports, ordered)
    direct = Redis.from_url(redis_server.url)
    worker = in_process_worker(redis_server, worker_settings, worker_proxy, direct)
    try:
        for port, process in zip(ports, ingresses, strict=True):
            wait_for_port("127.0.0.1", port, 30, process)
        with httpx.Client(timeout=10) as client:
            yield Rig(
                direct,
                [f"http://127.0.0.1:{port}" for port in ports],
                ingress_proxy,
                worker_proxy,
                worker,
                client,
                ordered,
            )
    finally:
        checkpoints.install(None)
        for process in ingresses:
            kill_group(process, signal.SIGTERM)
        ingress_proxy.close()
        worker_proxy.close()


def start_ingresses(
    redis_server: LocalRedis, ingress_proxy: RedisProxy, ports: list[int], ordered: bool
) -> list[subprocess.Popen[bytes]]:
    """Ingress A on Redis directly, ingress B through the fault proxy, one on each of ``ports``."""
    # Both modes explicitly: the default is partitioned, and the jobs opt-out keeps its own fault harness.
    mode = {"GREENQ_ORDERING": "partitioned" if ordered else "jobs", "GREENQ_PARTITIONS": str(PARTITIONS)}
    urls = [redis_server.url, ingress_proxy.url(redis_server.password)]
    return [
        start(
            ["ingress", "--port", str(port)],
            clean_env(
                GREENQ_REDIS_URL=url,
                GREENQ_TOKENS=f"tests={TOKEN}",
                GREENQ_REDIS_SOCKET_TIMEOUT="2",
                GREENQ_BATCH_BACKLOG_DELAY_MS="0",  # requests come one at a time: never linger
                **mode,
            ),
        )
        for port, url in zip(ports, urls, strict=True)
    ]


def in_process_worker(
    redis_server: LocalRedis, worker_settings: WorkerSettings, worker_proxy: RedisProxy, direct: Redis
) -> QuietWorker:
    """The RQ worker: it dequeues on ``direct``, its processor reads and commits through the fault proxy."""
    settings = worker_settings.model_copy(
        update={"router": "tests.support.effects:router", "max_retries": MAX_RETRIES, "retry_backoff": [0.0]}
    )
    validator = NotificationValidator()
    metrics = WorkerMetrics.create(CollectorRegistry(), validator.known_webhook_types)
    proxied = Redis.from_url(worker_proxy.url(redis_server.password), socket_timeout=5)
    processor = Processor(settings, proxied, load_router(settings.router), validator, metrics)
    return QuietWorker(
        [notification_queue(direct)],
        context=WorkerContext(processor, PartitionDrain(processor, proxied, PARTITIONS)),
        connection=direct,
        serializer=SERIALIZER,
        abandoned_after=5,
        maintenance_interval=1,
    )


@pytest.mark.slow
def test_random_schedules_under_faults_keep_every_effect_exactly_once(rig: Rig) -> None:
    run_seeds(rig, SEEDS)


@pytest.mark.slow
def test_ordered_mode_keeps_exactly_once_and_per_chat_order_under_faults(ordered_rig: Rig) -> None:
    run_seeds(ordered_rig, max(1, SEEDS // 5))


def run_seeds(rig: Rig, seeds: int) -> None:
    for seed in range(FIRST_SEED, FIRST_SEED + seeds):
        try:
            run_seed(rig, seed)
        except AssertionError as error:
            raise AssertionError(
                f"seed {seed} failed (GREENQ_RANDOM_FIRST_SEED={seed} GREENQ_RANDOM_SEEDS=1): {error}"
            ) from error
    rig.tally["seeds"] = seeds
    report = dict(sorted(rig.tally.items()))
    print(f"exactly-once random schedules: {report}")
    if tally_path := os.environ.get("GREENQ_RANDOM_TALLY"):
        Path(tally_path).write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    assert rig.tally["faults_fired"] >= seeds // 2  # the faults really fired, often


def run_seed(rig: Rig, seed: int) -> None:
    rig.redis.flushall()
    rig.accepted_order.clear()
    rng = random.Random(seed)
    schedule = plan(seed, MESSAGE, STATE, QUOTA)
    faults = arm_faults(rig, rng, schedule)
    for round_ in (0, 1):
        for notification, ingress in schedule.deliveries(round_):
            deliver(rig, notification, ingress, faults)
        drain(rig)
    checkpoints.install(None)
    fired = [kind for kind, fault in faults.items() if fault.fired.is_set()]
    rig.tally.update(f"fault:{kind}" for kind in fired)
    rig.tally["faults_fired"] += len(fired)
    rig.tally["notifications"] += len(schedule.notifications)
    check(rig, schedule, fired)


def arm_faults(rig: Rig, rng: random.Random, schedule: Schedule) -> dict[str, Fault]:
    """Faults for this seed, by kind; each fires at most once (a crash is a checkpoint hook)."""
    for proxy in (rig.ingress_proxy, rig.worker_proxy):
        proxy.faults.clear()
    faults: dict[str, Fault] = {}
    if rng.random() < 0.5:
        # Ordered mode's ingress writes with XADD (EXEC only when it queues a drain job).
        faults["ingress-exec-reply-lost"] = rig.ingress_proxy.add(
            Fault("XADD" if rig.ordered else "EXEC", "drop", nth=rng.randint(1, 3))
        )
    if rng.random() < 0.4:
        faults["worker-commit-reply-lost"] = rig.worker_proxy.add(
            Fault("EXEC", "drop", nth=rng.randint(1, 3))
        )
    if rng.random() < 0.3:
        faults["worker-claim-read-dropped"] = rig.worker_proxy.add(
            Fault("MGET", "drop", nth=rng.randint(1, 3))
        )
    if rng.random() < 0.5:
        point, nth = rng.choice(CRASH_POINTS), rng.randint(1, 3)
        faults[f"crash-at-{point}"] = crash = Fault(point, "drop")
        checkpoints.install(crash_hook(point, nth, crash))
    return faults


def crash_hook(point: str, nth: int, record: Fault) -> checkpoints.Hook:
    reached = Counter[str]()

    def hook(name: str) -> None:
        reached[name] += 1
        if name == point and reached[name] == nth:
            record.fired.set()
            raise SimulatedCrash(f"simulated crash at {point} #{nth}")

    return hook


def deliver(rig: Rig, notification: Planned, ingress: int, faults: dict[str, Fault]) -> None:
    """POST until 200, like GREEN API (which resends a non-200 a minute later)."""
    for _ in range(5):
        landed_before = _landed(faults)
        status = rig.client.post(
            f"{rig.ingress_urls[ingress]}/green-api/webhook/",
            content=notification.body,
            headers={"Authorization": TOKEN},
        ).status_code
        rig.tally[f"status_{status}"] += 1
        if status == 200:
            _accepted(rig, notification)
            return
        assert status == 503, status
        if _landed(faults) > landed_before:
            _accepted(rig, notification)  # the proxy let this write reach Redis and dropped only the reply
    raise AssertionError(f"{notification.key} never got a 200")


def _accepted(rig: Rig, notification: Planned) -> None:
    rig.accepted_order.append(notification.key)
    notification.accepted += 1


def _landed(faults: dict[str, Fault]) -> int:
    fault = faults.get("ingress-exec-reply-lost")
    return int(fault is not None and fault.fired.is_set())


def drain(rig: Rig) -> None:
    for _ in range(10):
        rig.worker.work(burst=True, with_scheduler=False, logging_level="CRITICAL")
        if notification_queue(rig.redis).count == 0 and not _backlog(rig):
            return
    raise AssertionError("the queue did not drain")


def _backlog(rig: Rig) -> int:
    """Ordered mode: entries still in partition streams, plus held chats."""
    if not rig.ordered:
        return 0
    return sum(
        int(rig.redis.xlen(keys.partition_stream_key(p))) + int(rig.redis.hlen(keys.partition_held_key(p)))
        for p in range(PARTITIONS)
    )


def check_order(rig: Rig, schedule: Schedule) -> None:
    """Per chat and handler, effects appear in the order their copies were accepted: a handler's n-th
    effect of one notification belongs to its n-th stored copy (a resend of a message is a duplicate and
    has none; each copy of a notification without identity is its own event)."""
    chat_of = {n.key.upper(): partitions.chat_key(orjson.loads(n.body)) for n in schedule.notifications}
    copies: dict[str, list[int]] = {}
    for index, key in enumerate(rig.accepted_order):
        copies.setdefault(key.upper(), []).append(index)
    seen: dict[tuple[str, str], list[int]] = {}
    handled = Counter[tuple[str, str]]()
    for key, handler in effects(rig.redis):
        rank = copies[key.upper()][handled[(key.upper(), handler)]]
        handled[(key.upper(), handler)] += 1
        seen.setdefault((chat_of[key.upper()], handler), []).append(rank)
    for (chat, handler), ranks in seen.items():
        assert ranks == sorted(ranks), f"{handler} saw chat {chat!r} out of order: {ranks}"
    rig.tally["order_checked_effects"] += sum(len(ranks) for ranks in seen.values())


def check(rig: Rig, schedule: Schedule, fired: list[str]) -> None:
    redis = rig.redis
    raw = cast(dict[bytes, bytes], redis.hgetall(keys.OUTCOME_COUNTS))
    outcomes = +Counter({key.decode(): int(value) for key, value in raw.items()})
    seen_effects = Counter(effects(redis))
    letters = Counter(letter.outcome.value for letter in DeadLetterStore(redis).entries())
    wanted_effects = expected_effects(schedule)
    rig.tally["answered_200_or_landed"] += sum(n.accepted for n in schedule.notifications)
    rig.tally["effects"] += sum(seen_effects.values())
    rig.tally["duplicate_effects"] += sum((seen_effects - wanted_effects).values())
    rig.tally["lost_effects"] += sum((wanted_effects - seen_effects).values())
    context = (
        f"faults fired {fired}; {[(n.key, n.kind, n.deliveries, n.accepted) for n in schedule.notifications]}"
    )
    assert outcomes == expected_outcomes(schedule), context
    assert seen_effects == wanted_effects, context
    assert letters == +Counter(
        {k: v for k, v in outcomes.items() if k in ("failed", "invalid", "unknown_type")}
    )
    queue = notification_queue(redis)
    assert queue.count == 0
    scheduled = queue.scheduled_job_registry
    assert scheduled.get_job_ids() == []
    assert queue.failed_job_registry.get_job_ids() == []
    assert not redis.keys("rq:job:*")  # every job finished (they are deleted on success)
    if rig.ordered:
        assert _backlog(rig) == 0
        check_order(rig, schedule)
