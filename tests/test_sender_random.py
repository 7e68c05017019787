"""The outbox sender under random fault schedules; every invariant is counted from outside.

Per seed (``tests.support.send_schedule``): 8-14 outbox entries of 2-4 chats on two simulator instances,
put as the workers put them (half before the sender starts, the rest once it has sent one), and random
faults: the simulator loses the answer of a send call after processing it, drops the call before, fails it
(500, 502, 429, 400) or holds it past the sender's request timeout, on the send methods and on the lookup
methods (showMessagesQueue, lastOutgoingMessages); the Redis proxy loses the reply of a settling EXEC, of the
fenced ``sending`` write, of a pacing slot, of a record read or of a stream read, or cuts the connection
before the command; and the sender is SIGKILLed at a send checkpoint and a new one takes the lease over.

Checked from the simulator's log of sent messages and from Redis once every entry is final and the outbox
streams are empty: every entry ``sent`` exactly once (or, only where a 400 was injected, ``dead`` with an
``unsent`` dead letter and never sent), its record holding the sent message's idMessage, each chat's
messages in outbox order, nothing else sent. None of the schedules meets a case docs/sender-design.md lists
as at-least-once, so a duplicate is a defect. Seeds run in lanes at once (own simulator, proxy, Redis db).
``GREENQ_SEND_RANDOM_SEEDS`` / ``_FIRST_SEED`` / ``_LANES`` choose; ``GREENQ_SEND_RANDOM_TALLY=<file>``
writes the figures.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from redis import Redis

from greenq.core import keys
from greenq.core.deadletters import DeadLetterStore
from greenq.core.outbox import ReplyRecord, check_entry
from greenq.local.redis_server import LocalRedis
from greenq.simulator.control import SimulatorControl
from tests.support.crash import CRASH_AT_ENV, CRASH_ONCE_ENV
from tests.support.processes import kill_group
from tests.support.redis_proxy import Fault, RedisProxy
from tests.support.send_schedule import (
    LOOKUP_METHODS,
    MAX_OVERRUN,
    REDIS_TARGETS,
    REQUEST_TIMEOUT,
    Put,
    RedisFault,
    SendSchedule,
    plan,
)
from tests.support.sender import PARTITIONS, pace_at_minimum, record, sender_env, start_sender
from tests.support.sends import VALID_SENDS
from tests.support.simulator import INSTANCE, INSTANCE_TOKEN, OTHER_INSTANCE, OTHER_TOKEN, running_simulator

SEEDS = int(os.environ.get("GREENQ_SEND_RANDOM_SEEDS", "24"))
FIRST_SEED = int(os.environ.get("GREENQ_SEND_RANDOM_FIRST_SEED", "0"))
LANES = min(SEEDS, int(os.environ.get("GREENQ_SEND_RANDOM_LANES", "4")))
INSTANCES = ((INSTANCE, INSTANCE_TOKEN), (OTHER_INSTANCE, OTHER_TOKEN))
SEND_METHODS = sorted({method for method, _ in VALID_SENDS})
#: GREEN API journals a sent message this late in the simulator; the sender allows JOURNAL_LAG.
SIM_JOURNAL_LAG, JOURNAL_LAG = 0.3, 1.0
SEED_TIMEOUT = 90.0
FINAL_STATES = ("sent", "dead")
REPLY_TTL = 3600


@dataclass
class Lane:
    """One seed at a time: its own simulator, Redis database and fault proxy."""

    db: int
    redis: Redis
    proxy: RedisProxy
    url: str
    control: SimulatorControl
    env: dict[str, str]
    logs: Path


@pytest.fixture
def lanes(redis_server: LocalRedis, tmp_path: Path) -> Iterator[list[Lane]]:
    with ExitStack() as stack:
        made = []
        for db in range(1, LANES + 1):
            proxy = RedisProxy("127.0.0.1", redis_server.port)
            stack.callback(proxy.close)
            url, control = stack.enter_context(
                running_simulator(send_delay_ms=1, journal_lag=SIM_JOURNAL_LAG)
            )
            for id_instance, token in INSTANCES:
                pace_at_minimum(url, id_instance, token)
            env = sender_env(
                redis_server,
                url,
                GREENQ_REDIS_URL=proxy.url(redis_server.password, db=db),
                GREENQ_SEND_REQUEST_TIMEOUT=str(REQUEST_TIMEOUT),
                GREENQ_SEND_JOURNAL_LAG_SECONDS=str(JOURNAL_LAG),
            )
            redis = Redis(port=redis_server.port, password=redis_server.password, db=db)
            stack.callback(redis.close)
            made.append(Lane(db, redis, proxy, url, control, env, tmp_path))
        yield made


@pytest.mark.slow
@pytest.mark.timeout(max(300, 20 * SEEDS // LANES))
def test_random_fault_schedules_send_every_entry_once_in_chat_order(lanes: list[Lane]) -> None:
    tally: Counter[str] = Counter()
    lock = threading.Lock()
    seeds = list(range(FIRST_SEED, FIRST_SEED + SEEDS))

    def run_lane(lane: Lane) -> None:
        for seed in seeds[lane.db - 1 :: len(lanes)]:
            counted = run_seed(lane, seed)
            with lock:
                tally.update(counted)

    with ThreadPoolExecutor(len(lanes)) as pool:
        for future in [pool.submit(run_lane, lane) for lane in lanes]:
            future.result()
    tally["schedules"] = len(seeds)
    report = dict(sorted(tally.items()))
    print(f"sender random schedules: {report}")
    if tally_path := os.environ.get("GREENQ_SEND_RANDOM_TALLY"):
        Path(tally_path).write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    assert tally["faults_fired"] >= len(seeds) // 2  # the faults really fired (about 6 a seed)
    assert (tally["lost"], tally["duplicates"]) == (0, 0)


def run_seed(lane: Lane, seed: int) -> Counter[str]:
    """One schedule on ``lane``; its figures. Failures name the seed and how to re-run it alone."""
    schedule = plan(seed)
    started = time.monotonic()
    lane.redis.flushdb()
    lane.proxy.faults.clear()
    before = {i: (len(lane.control.sent(i)), lane.control.stats(i)["send_calls"]) for i, _ in INSTANCES}
    proxy_faults = arm(lane, schedule)
    log_path = lane.logs / f"sender-{seed}.log"
    try:
        with log_path.open("wb") as log:
            restarts = supervise(lane, schedule, log)
        counted = check(lane, schedule, before)
    except AssertionError as error:
        tail = log_path.read_text(errors="replace")[-3000:] if log_path.exists() else ""
        raise AssertionError(
            f"seed {seed} failed (GREENQ_SEND_RANDOM_FIRST_SEED={seed} GREENQ_SEND_RANDOM_SEEDS=1): {error}\n"
            f"schedule: {schedule.summary()}\nsender log tail:\n{tail}"
        ) from error
    finally:
        for id_instance, _ in INSTANCES:
            lane.control.clear_faults(id_instance)
    counted.update(f.label for f, fault in proxy_faults if fault.fired.is_set())
    counted["faults_fired"] += sum(1 for _, fault in proxy_faults if fault.fired.is_set())
    crash_marker = lane.logs / f"crash-{seed}"
    if crash_marker.exists():
        counted[f"crash-at-{crash_marker.read_text()}"] += 1
        counted["faults_fired"] += 1
    counted["restarts"] += restarts
    counted["two_replicas"] += schedule.replicas == 2
    counted["seconds"] += round(time.monotonic() - started)
    return counted


def arm(lane: Lane, schedule: SendSchedule) -> list[tuple[RedisFault, Fault]]:
    """Inject the schedule's simulator faults and add its Redis faults to the lane's proxy."""
    for rule in schedule.sim_faults:
        methods = SEND_METHODS if rule.group == "send" else list(LOOKUP_METHODS)
        lane.control.inject(
            rule.instance,
            rule.kind,
            1,
            status=rule.status,
            seconds=rule.seconds,
            methods=methods,
            every=rule.every,
        )
    added = []
    for fault in schedule.redis_faults:
        command, matches = REDIS_TARGETS[fault.target]
        added.append((fault, lane.proxy.add(Fault(command, fault.action, nth=fault.nth, matches=matches))))
    return added


def supervise(lane: Lane, schedule: SendSchedule, log: Any) -> int:
    """Run the schedule's senders (restarting the one its SIGKILL hits) until every entry is final; put the
    second batch once the first entry has settled. The number of restarts."""
    env = dict(lane.env)
    if schedule.crash is not None:
        point, nth = schedule.crash
        env |= {CRASH_AT_ENV: f"{point}:{nth}", CRASH_ONCE_ENV: str(lane.logs / f"crash-{schedule.seed}")}
    for item in schedule.puts[: schedule.first_batch]:
        put_as_worker(lane.redis, item)
    senders = [start_sender(env, stderr=log) for _ in range(schedule.replicas)]
    restarts, deadline = 0, time.monotonic() + SEED_TIMEOUT
    pending = schedule.puts[schedule.first_batch :]
    try:
        while pending or not finished(lane, schedule):
            restarts += revive(senders, env, log, restarts)
            if pending and any(state_of(lane, item.entry.id) in FINAL_STATES for item in schedule.puts):
                for item in pending:
                    put_as_worker(lane.redis, item)
                pending = []
            assert time.monotonic() < deadline, f"not final after {SEED_TIMEOUT}s: {states(lane, schedule)}"
            time.sleep(0.05)
        if any(f.kind == "delay" and f.group == "send" for f in schedule.sim_faults):
            # A call held by a `delay` fault reaches the simulator at most this long after it timed out:
            # anything it would add to the sent log is there once this has passed.
            time.sleep(REQUEST_TIMEOUT + MAX_OVERRUN)
        for sender in senders:  # the planned SIGKILL may land after the last commit (at send-recorded)
            if sender.poll() is not None:
                assert_planned_kill(sender, restarts)
    finally:
        for sender in senders:
            kill_group(sender, signal.SIGTERM)
    return restarts


def revive(senders: list[subprocess.Popen[bytes]], env: dict[str, str], log: Any, restarts: int) -> int:
    """Replace the sender the planned SIGKILL hit (once); anything else that exits fails the seed."""
    for index, sender in enumerate(senders):
        if sender.poll() is not None:
            assert_planned_kill(sender, restarts)
            senders[index] = start_sender(env, stderr=log)
            return 1
    return 0


def assert_planned_kill(sender: subprocess.Popen[bytes], restarts: int) -> None:
    """The one SIGKILL a schedule plans (its crash hook kills once); any other exit is a defect."""
    exited = f"a sender exited by itself ({sender.returncode}, after {restarts} restarts)"
    assert sender.returncode == -signal.SIGKILL, exited
    assert restarts == 0, exited


def put_as_worker(redis: Redis, item: Put) -> None:
    """The entry and its ``queued`` record in one transaction, as a worker's commit writes them."""
    assert check_entry(item.entry) is None
    record = ReplyRecord(updated=item.entry.created, history=("queued",))
    with redis.pipeline(transaction=True) as pipe:
        pipe.xadd(keys.outbox_stream_key(item.partition), item.entry.encode())  # type: ignore[arg-type]
        pipe.set(keys.reply_key(item.entry.id), record.encode(), nx=True, ex=REPLY_TTL)
        pipe.execute()


def state_of(lane: Lane, entry_id: str) -> str | None:
    found = record(lane.redis, entry_id)
    return found.state if found else None


def states(lane: Lane, schedule: SendSchedule) -> dict[str, str | None]:
    return {item.entry.id: state_of(lane, item.entry.id) for item in schedule.puts}


def finished(lane: Lane, schedule: SendSchedule) -> bool:
    """Every entry final, the outbox streams empty, and the simulator's outgoing queues sent."""
    return (
        all(state in FINAL_STATES for state in states(lane, schedule).values())
        and sum(int(lane.redis.xlen(keys.outbox_stream_key(p))) for p in range(PARTITIONS)) == 0
        and all(lane.control.stats(i)["outgoing_queue_length"] == 0 for i, _ in INSTANCES)
    )


def body_key(body: dict[str, Any]) -> bytes:
    return orjson.dumps(body, option=orjson.OPT_SORT_KEYS)


def check(lane: Lane, schedule: SendSchedule, before: dict[int, tuple[int, int]]) -> Counter[str]:
    counted: Counter[str] = Counter(schedule=1, entries=len(schedule.puts))
    sent_log = []
    for id_instance, _ in INSTANCES:
        sent_log += lane.control.sent(id_instance)[before[id_instance][0] :]
        counted["send_calls"] += lane.control.stats(id_instance)["send_calls"] - before[id_instance][1]
        counted.update(fired_sim_faults(lane, schedule, id_instance))
        dead = [
            p
            for p in schedule.puts
            if p.entry.instance == str(id_instance) and state_of(lane, p.entry.id) == "dead"
        ]
        assert len(dead) == schedule.refused(id_instance), f"dead entries {dead} on {id_instance}"
    counted["sent_messages"] = len(sent_log)
    times = Counter(body_key(item["body"]) for item in sent_log)
    ids = {body_key(item["body"]): item["idMessage"] for item in sent_log}
    letters = {letter.envelope.request_id: letter for letter in DeadLetterStore(lane.redis).entries()}
    ours = set()
    for item in schedule.puts:
        entry, key = item.entry, body_key(item.entry.body)
        ours.add(key)
        found = record(lane.redis, entry.id)
        assert found is not None, entry.id
        if found.state == "dead":
            counted["dead"] += 1
            assert times[key] == 0, f"{entry.id} is dead but was sent"
            assert "400" in " ".join(letters[entry.id].reasons), letters[entry.id].reasons
            continue
        counted["lost"] += times[key] == 0
        counted["duplicates"] += max(0, times[key] - 1)
        assert times[key] == 1, f"{entry.id} sent {times[key]} times"
        assert found.id_message == ids[key], f"{entry.id} recorded {found.id_message}, sent as {ids[key]}"
    assert set(times) <= ours, "the simulator sent something no entry asked for"
    assert len(letters) == counted["dead"]
    counted.update(check_order(schedule, sent_log))
    return counted


def check_order(schedule: SendSchedule, sent_log: list[dict[str, Any]]) -> Counter[str]:
    """Per chat, the messages went out in outbox order (dead entries left out)."""
    entry_of = {body_key(item.entry.body): item.entry for item in schedule.puts}
    seen: dict[str, list[str]] = {item.entry.chat: [] for item in schedule.puts}
    for sent in sent_log:
        entry = entry_of[body_key(sent["body"])]
        seen[entry.chat].append(entry.id)
    order = [item.entry.id for item in schedule.puts]
    counted: Counter[str] = Counter()
    for chat, ids in seen.items():
        counted["order_checked"] += len(ids)
        assert ids == sorted(ids, key=order.index), f"chat {chat} got {ids}"
    return counted


def fired_sim_faults(lane: Lane, schedule: SendSchedule, id_instance: int) -> Counter[str]:
    """Send faults all fire (see tests.support.send_schedule); lookup faults fire in order, as far as the
    sender looked: the simulator's pending count says how many did not."""
    pending = lane.control.stats(id_instance)["faults_pending"]
    mine = [f for f in schedule.sim_faults if f.instance == id_instance]
    lookups = [f for f in mine if f.group == "lookup"]
    assert pending <= len(lookups), f"{pending} send faults of {id_instance} never fired"
    fired = [f for f in mine if f.group == "send"] + lookups[: len(lookups) - pending]
    return Counter([f.label for f in fired] + ["faults_fired"] * len(fired))
