"""``greenq send`` against the simulator: per-chat order, records and the idMessage index, 429s, 4xx dead
letters and their replay, retried 5xx, and a clean stop that releases its leases."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx2
import orjson
import pytest
from redis import Redis

from greenq.core import keys
from greenq.core.deadletters import DeadLetterStore
from greenq.local.procs import free_port
from greenq.local.redis_server import LocalRedis
from greenq.simulator.control import SimulatorControl
from tests.support.metrics import scrape
from tests.support.processes import kill_group, run_greenq, subprocess_env, wait_until
from tests.support.sender import (
    PARTITIONS,
    pace_at_minimum,
    put,
    record,
    reply,
    running_sender,
    sender_env,
    sent_bodies,
    start_sender,
    state,
    wait_for_states,
)
from tests.support.simulator import INSTANCE, running_simulator

ANN, BOB = "79001110001@c.us", "79001110002@c.us"


@pytest.fixture
def sim() -> Iterator[tuple[str, SimulatorControl]]:
    """A simulator that sends what it accepts at once, with the instance paced at 500 ms."""
    with running_simulator(send_delay_ms=1) as (url, control):
        pace_at_minimum(url)
        yield url, control


def test_two_interleaved_chats_are_sent_each_in_order_and_recorded_with_their_id(
    redis_server: LocalRedis, redis_conn: Redis, sim: tuple[str, SimulatorControl]
) -> None:
    url, control = sim
    entries = [reply(f"{who}{n}", chat) for n in range(3) for who, chat in (("ann", ANN), ("bob", BOB))]
    put(redis_conn, 1, *entries)

    with running_sender(sender_env(redis_server, url)) as sender:
        wait_for_states(redis_conn, entries, "sent")
        sender.send_signal(signal.SIGTERM)
        assert sender.wait(30) == 0

    sent = control.sent(INSTANCE)
    for chat in (ANN, BOB):
        texts = [item["body"]["message"] for item in sent if item["body"]["chatId"] == chat]
        assert texts == [entry.body["message"] for entry in entries if entry.chat == chat]
    by_text = {item["body"]["message"]: item["idMessage"] for item in sent}
    for entry in entries:
        found = record(redis_conn, entry.id)
        assert found is not None
        id_message = by_text[entry.body["message"]]
        assert (found.id_message, found.attempts) == (id_message, 1)
        assert redis_conn.hget(keys.reply_id_key(id_message), "entry") == entry.id.encode()
    assert redis_conn.xlen(keys.outbox_stream_key(1)) == 0
    assert not any(redis_conn.exists(keys.outbox_lease_key(p)) for p in range(PARTITIONS))


def test_429_waits_and_sends_once(
    redis_server: LocalRedis, redis_conn: Redis, sim: tuple[str, SimulatorControl]
) -> None:
    url, control = sim
    control.inject(INSTANCE, "fail", 2, status=429, methods=["sendMessage"])
    entry = reply("limited", ANN)
    put(redis_conn, 0, entry)
    port = free_port()

    with running_sender(sender_env(redis_server, url, GREENQ_SEND_METRICS_PORT=str(port))):
        wait_for_states(redis_conn, [entry], "sent")
        metrics = f"http://127.0.0.1:{port}/metrics"
        assert (
            scrape(metrics, 'greenq_sends_total{instance="first",method="sendMessage",result="rate_limited"}')
            == 2
        )
        assert scrape(metrics, 'greenq_sends_total{instance="first",method="sendMessage",result="sent"}') == 1

    assert sent_bodies(control) == [entry.body]
    found = record(redis_conn, entry.id)
    assert found is not None
    assert found.history == ("sending", "queued", "sending", "queued", "sending", "sent")


def test_a_refused_entry_is_dead_lettered_and_a_replay_sends_it(
    redis_server: LocalRedis, redis_conn: Redis, sim: tuple[str, SimulatorControl]
) -> None:
    url, control = sim
    control.inject(INSTANCE, "fail", 1, status=400, methods=["sendMessage"])
    entry = reply("refused", ANN)
    put(redis_conn, 2, entry)

    with running_sender(sender_env(redis_server, url)):
        wait_for_states(redis_conn, [entry], "dead")
        [letter] = DeadLetterStore(redis_conn).entries()
        assert letter.outcome.value == "unsent"
        assert "HTTP 400" in letter.reasons[0]
        assert sent_bodies(control) == []
        replayed = run_greenq(["dlq", "replay", "--all"], subprocess_env(redis_server))
        assert replayed.returncode == 0, replayed.stderr
        wait_for_states(redis_conn, [entry], "sent")

    assert sent_bodies(control) == [entry.body]
    assert DeadLetterStore(redis_conn).size() == 0


def test_server_errors_are_retried_and_the_entry_sent_once(
    redis_server: LocalRedis, redis_conn: Redis, sim: tuple[str, SimulatorControl]
) -> None:
    url, control = sim
    control.inject(INSTANCE, "fail", 2, status=500, methods=["sendMessage"])
    entry = reply("flaky", BOB)
    put(redis_conn, 3, entry)

    with running_sender(sender_env(redis_server, url)):
        wait_for_states(redis_conn, [entry], "sent")

    assert sent_bodies(control) == [entry.body]
    found = record(redis_conn, entry.id)
    assert found is not None
    assert found.attempts == 3
    assert state(redis_conn, entry.id) == "sent"


def test_unreadable_entries_and_unknown_instances_are_dead_lettered_not_retried(
    redis_server: LocalRedis, redis_conn: Redis, sim: tuple[str, SimulatorControl]
) -> None:
    url, control = sim
    stream = keys.outbox_stream_key(0)
    redis_conn.xadd(stream, {"entry": b"{not json"})
    redis_conn.xadd(stream, {"something": b"else"})
    listed = {"id": "x", "instance": str(INSTANCE), "method": "sendMessage", "body": ["not", "an", "object"]}
    redis_conn.xadd(stream, {"entry": orjson.dumps({**listed, "created": 0, "handler": "h"})})
    stranger = replace(reply("stranger", ANN), instance="999")
    fine = reply("fine", ANN)
    put(redis_conn, 0, stranger, fine)

    with running_sender(sender_env(redis_server, url)):
        wait_for_states(redis_conn, [fine], "sent")
        wait_until(lambda: DeadLetterStore(redis_conn).size() == 4, 30, "four dead letters")

    reasons = sorted(letter.reasons[0] for letter in DeadLetterStore(redis_conn).entries())
    assert reasons == [
        "idInstance 999 is not in GREENQ_INSTANCES",
        "not an outbox entry: AttributeError",
        "not an outbox entry: JSONDecodeError",
        "not an outbox entry: KeyError",
    ]
    assert state(redis_conn, stranger.id) == "dead"
    assert redis_conn.xlen(stream) == 0
    assert sent_bodies(control) == [fine.body]


def test_an_entry_that_cannot_go_out_shows_in_the_outbox_metrics_until_it_is_sent(
    redis_server: LocalRedis, redis_conn: Redis, sim: tuple[str, SimulatorControl]
) -> None:
    url, control = sim
    control.inject(INSTANCE, "fail", 10_000, status=503, methods=["sendMessage"])
    entry = replace(reply("stuck", BOB), created=time.time() - 60)
    put(redis_conn, 0, entry)
    port = free_port()
    metrics = f"http://127.0.0.1:{port}/metrics"

    def gauges() -> tuple[float, float, float]:
        try:
            return (
                scrape(metrics, 'greenq_outbox_depth{instance="first"}'),
                scrape(metrics, 'greenq_outbox_length{partition="0"}'),
                scrape(metrics, 'greenq_outbox_oldest_age_seconds{instance="first"}'),
            )
        except httpx2.TransportError:  # the sender is still starting
            return (-1, -1, -1)

    with running_sender(sender_env(redis_server, url, GREENQ_SEND_METRICS_PORT=str(port))):
        wait_until(lambda: gauges()[:2] == (1, 1), 30, "the held entry in the gauges")
        assert gauges()[2] >= 60
        assert (
            scrape(metrics, 'greenq_sends_total{instance="first",method="sendMessage",result="retried"}') >= 1
        )
        control.clear_faults(INSTANCE)
        wait_for_states(redis_conn, [entry], "sent")
        wait_until(lambda: gauges() == (0, 0, 0), 30, "the gauges back at zero")

    assert sent_bodies(control) == [entry.body]


def test_a_refused_token_dead_letters_the_entry_and_no_token_reaches_the_logs(
    redis_server: LocalRedis, redis_conn: Redis, sim: tuple[str, SimulatorControl], tmp_path: Path
) -> None:
    url, _ = sim
    wrong = "0123456789wrongtoken0123456789wrongtoken0123456789"
    instances = f"first={url}|{INSTANCE}|{wrong}"
    env = sender_env(redis_server, url, GREENQ_INSTANCES=instances, GREENQ_LOG_LEVEL="DEBUG")
    entry = reply("unauthorised", ANN)
    put(redis_conn, 0, entry)
    log_path = tmp_path / "sender.log"

    with log_path.open("wb") as log:
        sender = start_sender(env, stderr=log)
        try:
            wait_for_states(redis_conn, [entry], "dead")
        finally:
            kill_group(sender, signal.SIGTERM)

    [letter] = DeadLetterStore(redis_conn).entries()
    assert "HTTP 401" in letter.reasons[0]
    logs = log_path.read_text()
    assert "dead-lettered" in logs
    assert wrong not in logs
    assert wrong not in letter.reasons[0]


def test_sigterm_lets_the_call_in_flight_finish_and_record_its_id(
    redis_server: LocalRedis, redis_conn: Redis, sim: tuple[str, SimulatorControl]
) -> None:
    url, control = sim
    control.inject(INSTANCE, "delay", 1, seconds=5, methods=["sendMessage"])
    entry = reply("in-flight", ANN)
    put(redis_conn, 0, entry)

    with running_sender(sender_env(redis_server, url)) as sender:
        wait_until(lambda: state(redis_conn, entry.id) == "sending", 30, "the call to be in flight")
        sender.send_signal(signal.SIGTERM)
        assert sender.wait(30) == 0

    assert state(redis_conn, entry.id) == "sent"
    assert not redis_conn.exists(keys.outbox_lease_key(0))
    wait_until(lambda: sent_bodies(control) == [entry.body], 10, "GREEN API to send the message")
