"""A send call that may have reached GREEN API is never repeated while GREEN API's records can tell: lost
answers (the simulator's ``lose_reply``), a sender SIGKILLed at each of its checkpoints (the next sender
takes the partition over when the lease expires), and two replicas splitting the partitions and pacing one
instance together."""

from __future__ import annotations

import itertools
import signal
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx2
import orjson
import pytest
from redis import Redis

from greenq.core import checkpoints, keys
from greenq.local.procs import free_port
from greenq.local.redis_server import LocalRedis
from greenq.simulator.control import SimulatorControl
from tests.support.crash import CRASH_AT_ENV, CRASH_ONCE_ENV
from tests.support.metrics import scrape
from tests.support.processes import wait_until
from tests.support.sender import (
    PARTITIONS,
    SEND_DELAY_MS,
    pace_at_minimum,
    put,
    record,
    reply,
    running_sender,
    sender_env,
    sent_bodies,
    start_sender,
    wait_for_states,
)
from tests.support.sends import VALID_SENDS
from tests.support.simulator import INSTANCE, INSTANCE_TOKEN, running_simulator

SEND_METHODS = sorted({method for method, _ in VALID_SENDS})


@pytest.fixture
def sim() -> Iterator[tuple[str, SimulatorControl]]:
    with running_simulator(send_delay_ms=1) as (url, control):
        pace_at_minimum(url)
        yield url, control


def times_sent(control: SimulatorControl) -> Counter[bytes]:
    return Counter(orjson.dumps(body, option=orjson.OPT_SORT_KEYS) for body in sent_bodies(control))


def test_a_lost_answer_is_found_in_green_apis_records_for_every_send_method(
    redis_server: LocalRedis, redis_conn: Redis, sim: tuple[str, SimulatorControl]
) -> None:
    url, control = sim
    entries = [reply(f"m{n}", body["chatId"], method, **body) for n, (method, body) in enumerate(VALID_SENDS)]
    control.inject(INSTANCE, "lose_reply", len(entries), methods=SEND_METHODS)
    put(redis_conn, 0, *entries)

    port = free_port()
    with running_sender(sender_env(redis_server, url, GREENQ_SEND_METRICS_PORT=str(port))):
        wait_for_states(redis_conn, entries, "sent")
        for method, count in Counter(entry.method for entry in entries).items():
            series = (
                f'greenq_sends_total{{instance="first",method="{method}",result="found_after_ambiguous"}}'
            )
            assert scrape(f"http://127.0.0.1:{port}/metrics", series) == count, method

    assert control.stats(INSTANCE)["send_calls"] == len(entries)  # no call was repeated
    assert set(times_sent(control).values()) == {1}
    assert len(times_sent(control)) == len(entries)
    by_body = {
        orjson.dumps(item["body"], option=orjson.OPT_SORT_KEYS): item["idMessage"]
        for item in control.sent(INSTANCE)
    }
    for entry in entries:
        found = record(redis_conn, entry.id)
        assert found is not None
        assert found.attempts == 1
        assert found.id_message == by_body[orjson.dumps(entry.body, option=orjson.OPT_SORT_KEYS)]


def test_a_lost_answer_for_a_message_still_in_green_apis_queue_is_found_there(
    redis_server: LocalRedis, redis_conn: Redis
) -> None:
    """GREEN API sends the first message at once and then waits: the second stays in its queue, where the
    sender finds the call whose answer was lost (and records the queue's messageID)."""
    with running_simulator(send_delay_ms=600_000) as (url, control):
        pace_at_minimum(url)
        first, second = reply("first", "79001110004@c.us"), reply("second", "79001110004@c.us")
        control.inject(INSTANCE, "lose_reply", 2, methods=["sendMessage"])
        put(redis_conn, 2, first, second)
        with running_sender(sender_env(redis_server, url)):
            wait_for_states(redis_conn, [first, second], "sent")
        queued = httpx2.get(
            f"{url}/waInstance{INSTANCE}/showMessagesQueue/{INSTANCE_TOKEN}", timeout=10
        ).json()
        assert sent_bodies(control) == [first.body]
        assert [item["body"] for item in queued] == [second.body]
        found = record(redis_conn, second.id)
        assert found is not None
        assert (found.attempts, found.id_message) == (1, queued[0]["messageID"])
        assert control.stats(INSTANCE)["send_calls"] == 2


@pytest.mark.parametrize(
    ("point", "attempts"),
    [(checkpoints.SEND_STARTED, 2), (checkpoints.SEND_ANSWERED, 1), (checkpoints.SEND_RECORDED, 1)],
)
def test_a_sender_killed_at_a_checkpoint_is_taken_over_and_nothing_is_sent_twice(
    redis_server: LocalRedis,
    redis_conn: Redis,
    sim: tuple[str, SimulatorControl],
    tmp_path: Path,
    point: str,
    attempts: int,
) -> None:
    """send-started: killed before the call (the next sender finds nothing and sends, once);
    send-answered: killed after GREEN API took it (the next sender finds it and does not call);
    send-recorded: killed after the commit (nothing left to do)."""
    url, control = sim
    entry = reply("crashy", "79001110003@c.us")
    put(redis_conn, 1, entry)
    marker = tmp_path / "crashed"
    env = sender_env(redis_server, url, **{CRASH_AT_ENV: f"{point}:1", CRASH_ONCE_ENV: str(marker)})

    doomed = start_sender(env)
    assert doomed.wait(60) == -signal.SIGKILL
    assert marker.read_text() == point
    assert redis_conn.exists(keys.outbox_lease_key(1))  # the dead sender never released its lease
    with running_sender(env):
        wait_for_states(redis_conn, [entry], "sent")

    assert sent_bodies(control) == [entry.body]
    found = record(redis_conn, entry.id)
    assert found is not None
    assert (found.attempts, found.id_message) == (attempts, control.sent(INSTANCE)[0]["idMessage"])
    assert redis_conn.xlen(keys.outbox_stream_key(1)) == 0


def lease_holders(redis: Redis) -> list[bytes | None]:
    return [redis.get(keys.outbox_lease_key(p)) for p in range(PARTITIONS)]  # type: ignore[misc]


def test_two_replicas_split_the_partitions_send_each_entry_once_and_pace_the_instance_together(
    redis_server: LocalRedis, redis_conn: Redis, sim: tuple[str, SimulatorControl]
) -> None:
    url, control = sim
    env = sender_env(redis_server, url)
    with running_sender(env):
        wait_until(
            lambda: (
                len(set(lease_holders(redis_conn)) - {None}) == 1 and None not in lease_holders(redis_conn)
            ),
            30,
            "one replica to hold every partition",
        )
        with running_sender(env):
            wait_until(
                lambda: (
                    sorted(Counter(lease_holders(redis_conn)).values()) == [2, 2]
                    and None not in lease_holders(redis_conn)
                ),
                30,
                "two replicas to hold two partitions each",
            )
            entries = [reply(f"r{n}", f"7900222000{n}@c.us") for n in range(8)]
            for n, entry in enumerate(entries):
                put(redis_conn, n % PARTITIONS, entry)
            wait_for_states(redis_conn, entries, "sent")

    assert set(times_sent(control).values()) == {1}
    assert len(times_sent(control)) == len(entries)
    assert all(
        found is not None and found.attempts == 1 for found in (record(redis_conn, e.id) for e in entries)
    )
    slots = sorted(int(raw) for raw in redis_conn.lrange(keys.send_slots_key(str(INSTANCE)), 0, -1))
    assert len(slots) == control.stats(INSTANCE)["send_calls"] == len(entries)
    assert all(later - earlier >= SEND_DELAY_MS for earlier, later in itertools.pairwise(slots))
