"""``greenq reconcile`` against the simulator's journal: journal lag, GREEN API's rate limits (429), a failing
instance beside a healthy one, messages it cannot rebuild, token masking, the periodic mode's metrics and
the settings it refuses. Real redis-server, real simulator (on a thread or as a process), real burst workers.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx2
import orjson
import pytest
from redis import Redis

from greenq.core.contract import Envelope, NotificationQueue
from greenq.core.logs import FIELDS_ATTR
from greenq.local.procs import free_port
from greenq.local.redis_server import LocalRedis
from greenq.pull.reconcile import ChatRequest
from greenq.simulator.control import SimulatorControl
from tests.conftest import DrainFn, load_sample
from tests.support.reconcile import (
    TOKENS,
    handled,
    journal_only,
    key_of,
    make_messages,
    one_pass,
    settings_for,
)
from tests.support.simulator import INSTANCE, OTHER_INSTANCE, running_simulator, sdk


def deliver(redis: Redis, drain: DrainFn, messages: list[dict[str, Any]]) -> None:
    """What GREEN API did deliver, processed by a real burst worker."""
    if messages:
        envelopes = [Envelope(body=orjson.dumps(m).decode(), source="webhook") for m in messages]
        NotificationQueue(redis).enqueue(envelopes)
    drain()


def test_messages_that_reach_the_journal_late_are_recovered_by_a_later_run(
    simulator: tuple[str, SimulatorControl],
    redis_server: LocalRedis,
    redis_conn: Redis,
    drain: DrainFn,
) -> None:
    url, control = simulator
    messages = make_messages(INSTANCE, 50)
    lost = messages[9::10]
    control.set_journal_lag(INSTANCE, 3600)  # nothing shows in the journal yet
    journal_only(control, INSTANCE, lost)
    control.add(INSTANCE, [m for m in messages if m not in lost])
    deliver(redis_conn, drain, [m for m in messages if m not in lost])
    settings = settings_for(url, redis_server)

    early = one_pass(settings, redis_conn)
    control.set_journal_lag(INSTANCE, 0)  # the journal catches up; the messages are still in the window
    late = one_pass(settings, redis_conn)
    drain()
    again = one_pass(settings, redis_conn)

    assert (early.reports["first"].checked, early.reports["first"].recovered) == (0, 0)
    assert (late.reports["first"].checked, late.reports["first"].recovered) == (50, 5)
    assert sorted(late.reports["first"].recovered_ids) == sorted(m["idMessage"] for m in lost)
    assert again.reports["first"].recovered == 0
    seen = handled(redis_conn)
    assert set(seen) == {key_of(m) for m in messages}
    assert max(seen.values()) == 1


def test_429_answers_are_backed_off_until_the_run_completes(
    redis_server: LocalRedis, redis_conn: Redis
) -> None:
    with running_simulator() as (url, control):
        journal_only(control, INSTANCE, make_messages(INSTANCE, 4))
        for instance in (INSTANCE, OTHER_INSTANCE):  # every journal call past the first few answers 429
            control.inject(instance, "fail", 4, status=429, methods=["lastOutgoingMessages"])
        finished = one_pass(settings_for(url, redis_server, reconcile_max_attempts=8), redis_conn)

    assert all(reader.rate_limited == 4 for reader in finished.readers.values())
    assert finished.reports["first"].recovered == 4
    assert finished.reports["first"].error is None


def test_the_configured_rate_keeps_within_green_apis_limit(
    redis_server: LocalRedis, redis_conn: Redis
) -> None:
    """The simulator answers 429 past 2 journal calls a second; at 1.5 a second none is refused."""
    with running_simulator(journal_rate=2) as (url, control):
        settings = settings_for(url, redis_server, reconcile_rate_per_second=1.5)
        first = one_pass(settings, redis_conn)
        second = one_pass(settings, redis_conn)
        refused = [control.stats(i)["journal_refused"] for i in (INSTANCE, OTHER_INSTANCE)]

    assert refused == [0, 0]
    assert all(r.error is None for r in [*first.reports.values(), *second.reports.values()])


def test_the_simulator_journal_answers_like_green_apis_and_429_past_its_limit() -> None:
    from greenq.simulator.config import SimulatorConfig
    from greenq.simulator.server import simulator_thread

    config = SimulatorConfig(instances={INSTANCE: TOKENS[INSTANCE]}, port=free_port(), journal_rate=1)
    server = simulator_thread(config).start()
    control = SimulatorControl(server.url)
    message = make_messages(INSTANCE, 1)[0]
    try:
        control.add(INSTANCE, [message])
        history = sdk(server.url, INSTANCE, TOKENS[INSTANCE]).journals.getChatHistory(
            message["senderData"]["chatId"], 10
        )
        url = f"{server.url}/waInstance{INSTANCE}/lastIncomingMessages/{TOKENS[INSTANCE]}"
        with httpx2.Client(trust_env=False) as http:
            codes = [http.get(url, params={"minutes": 60}).status_code for _ in range(20)]
    finally:
        control.close()
        server.stop()
    assert history.code == 200
    assert [entry["idMessage"] for entry in history.data] == [message["idMessage"]]
    assert 429 in codes  # 20 calls in much less than 20 s: at most one a second is answered


def test_a_failing_instance_does_not_stop_the_others(
    simulator: tuple[str, SimulatorControl],
    redis_server: LocalRedis,
    redis_conn: Redis,
) -> None:
    url, control = simulator
    journal_only(control, OTHER_INSTANCE, make_messages(OTHER_INSTANCE, 3))
    control.inject(INSTANCE, "fail", 10, status=429, methods=["lastIncomingMessages"])

    finished = one_pass(settings_for(url, redis_server, reconcile_max_attempts=3), redis_conn)

    failed = finished.reports["first"]
    assert failed.error is not None
    assert "rate limited" in failed.error
    assert TOKENS[INSTANCE] not in failed.error
    assert finished.metric("greenq_reconcile_errors_total", instance="first", kind="rate_limited") == 1
    assert finished.reports["second"].recovered == 3
    assert finished.metric("greenq_reconcile_recovered_total", instance="second") == 3


def test_a_lost_message_the_journal_cannot_describe_is_counted_and_logged(
    simulator: tuple[str, SimulatorControl],
    redis_server: LocalRedis,
    redis_conn: Redis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    url, control = simulator
    poll = load_sample("incomingMessageReceived__pollMessage.json")
    poll["instanceData"]["idInstance"] = INSTANCE
    poll["timestamp"] = make_messages(INSTANCE, 1)[0]["timestamp"]
    journal_only(control, INSTANCE, [poll])

    with caplog.at_level(logging.ERROR, logger="greenq.reconcile"):
        finished = one_pass(settings_for(url, redis_server), redis_conn)

    assert (finished.reports["first"].unmapped, finished.reports["first"].recovered) == (1, 0)
    assert finished.metric("greenq_reconcile_unmapped_total", instance="first") == 1
    logged = [getattr(record, FIELDS_ATTR) for record in caplog.records if record.levelno == logging.ERROR]
    assert [(f["idMessage"], f["typeMessage"]) for f in logged] == [(poll["idMessage"], "pollMessage")]


def test_one_chat_can_be_reconciled_further_back_than_the_window(
    simulator: tuple[str, SimulatorControl],
    redis_server: LocalRedis,
    redis_conn: Redis,
) -> None:
    url, control = simulator
    messages = make_messages(INSTANCE, 40)  # 8 to 15 minutes old
    for message in messages[1::2]:
        message["senderData"]["chatId"] = "79000000002@c.us"
    chat = messages[0]["senderData"]["chatId"]
    in_chat = [m for m in messages if m["senderData"]["chatId"] == chat]
    forgotten = {**in_chat[0], "idMessage": "OLDER-THAN-DEDUP", "timestamp": in_chat[0]["timestamp"] - 3600}
    journal_only(control, INSTANCE, [*messages, forgotten])
    settings = settings_for(url, redis_server, reconcile_window_minutes=1, dedup_window_seconds=1800)

    window = one_pass(settings, redis_conn)
    history = one_pass(settings, redis_conn, ChatRequest(chat, 100))

    assert (window.reports["first"].checked, window.reports["first"].recovered) == (0, 0)
    report = history.reports["first"]
    assert 1 < len(in_chat) < len(messages)
    assert sorted(report.recovered_ids) == sorted(m["idMessage"] for m in in_chat)
    assert report.too_old == 1  # its dedup marker would have expired: recovering it could duplicate it
