"""The poller (``poll_instances``, ``greenq poll``) against the simulator and a real redis-server: order,
retries, pauses of a refused instance, Redis outages, stops, and tokens never logged."""

from __future__ import annotations

import logging
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx2
import orjson
import pytest
from redis import Redis

from greenq.local.procs import free_port
from greenq.local.redis_server import LocalRedis
from greenq.simulator.control import SimulatorControl
from tests.support.metrics import scrape
from tests.support.poller import PollerThread, fast_settings, instance, start_poller
from tests.support.processes import GREENQ, subprocess_env, wait_until
from tests.support.simulator import (
    INSTANCE,
    INSTANCE_TOKEN,
    OTHER_INSTANCE,
    OTHER_TOKEN,
    identity,
    make_notifications,
    queued_bodies,
    queued_envelopes,
)

UNKNOWN_INSTANCE = 7700000000


@pytest.fixture
def poller_threads() -> Iterator[list[PollerThread]]:
    """Pollers a test starts; all are stopped at the end, even when the test fails."""
    started: list[PollerThread] = []
    yield started
    for poller in started:
        poller.stop()


def test_notifications_are_enqueued_raw_then_deleted_in_order(
    simulator: tuple[str, SimulatorControl],
    redis_server: LocalRedis,
    redis_conn: Redis,
    poller_threads: list[PollerThread],
) -> None:
    url, control = simulator
    notifications = make_notifications(INSTANCE, 30)
    control.add(INSTANCE, notifications)

    poller = start_poller(
        poller_threads, fast_settings(redis_server.url, [instance("alpha", url, INSTANCE, INSTANCE_TOKEN)])
    )
    wait_until(lambda: control.stats(INSTANCE)["deleted"] == 30, 30, "30 deletes")
    poller.stop()

    envelopes = queued_envelopes(redis_conn)
    assert [identity(envelope["body"]) for envelope in envelopes] == [
        identity(orjson.dumps(n)) for n in notifications
    ]
    assert {(envelope["source"], envelope["token_id"]) for envelope in envelopes} == {("poll", "alpha")}
    first = orjson.loads(envelopes[0]["body"])
    assert set(first) == {"receiptId", "body"}  # the whole receiveNotification answer, unchanged
    assert first["body"] == notifications[0]
    assert control.stats(INSTANCE)["queue_length"] == 0
    assert poller.value("greenq_poller_received_total", instance="alpha") == 30
    assert poller.value("greenq_poller_deleted_total", instance="alpha") == 30
    assert poller.value("greenq_poller_poll_latency_seconds_count", instance="alpha") >= 30


def test_a_burst_of_5xx_is_retried_and_nothing_is_lost_or_repeated(
    simulator: tuple[str, SimulatorControl],
    redis_server: LocalRedis,
    redis_conn: Redis,
    poller_threads: list[PollerThread],
) -> None:
    url, control = simulator
    control.inject(INSTANCE, "fail", 4, status=503, methods=["receiveNotification"])
    control.inject(INSTANCE, "fail", 2, status=500, methods=["deleteNotification"])
    notifications = make_notifications(INSTANCE, 5)
    control.add(INSTANCE, notifications)

    poller = start_poller(
        poller_threads, fast_settings(redis_server.url, [instance("alpha", url, INSTANCE, INSTANCE_TOKEN)])
    )
    wait_until(lambda: control.stats(INSTANCE)["queue_length"] == 0, 30, "the queue to drain")
    poller.stop()

    assert [identity(body) for body in queued_bodies(redis_conn)] == [
        identity(orjson.dumps(n)) for n in notifications
    ]
    assert poller.value("greenq_poller_errors_total", instance="alpha", kind="server_error") == 6
    assert control.stats(INSTANCE)["faults_pending"] == 0


def test_rate_limiting_timeouts_and_dropped_connections_are_retried(
    simulator: tuple[str, SimulatorControl],
    redis_server: LocalRedis,
    redis_conn: Redis,
    poller_threads: list[PollerThread],
) -> None:
    url, control = simulator
    control.inject(INSTANCE, "fail", 2, status=429, methods=["receiveNotification"])
    control.inject(INSTANCE, "drop", 1, methods=["receiveNotification"])
    control.inject(INSTANCE, "delay", 1, seconds=1.0, methods=["deleteNotification"])
    control.add(INSTANCE, make_notifications(INSTANCE, 3))

    settings = fast_settings(
        redis_server.url, [instance("alpha", url, INSTANCE, INSTANCE_TOKEN)], poll_request_timeout=0.5
    )
    poller = start_poller(poller_threads, settings)
    wait_until(lambda: control.stats(INSTANCE)["queue_length"] == 0, 30, "the queue to drain")
    poller.stop()

    assert len(queued_bodies(redis_conn)) == 3
    assert poller.value("greenq_poller_errors_total", instance="alpha", kind="rate_limited") == 2
    assert poller.value("greenq_poller_errors_total", instance="alpha", kind="connection") == 1
    assert poller.value("greenq_poller_errors_total", instance="alpha", kind="timeout") == 1


def test_a_refused_instance_pauses_while_the_others_go_on(
    simulator: tuple[str, SimulatorControl],
    redis_server: LocalRedis,
    redis_conn: Redis,
    poller_threads: list[PollerThread],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    url, control = simulator
    control.add(INSTANCE, make_notifications(INSTANCE, 10))
    control.add(OTHER_INSTANCE, make_notifications(OTHER_INSTANCE, 10))
    wrong_token = "0000wrong0000token0000for0000other0000instance00"
    instances = [
        instance("good", url, INSTANCE, INSTANCE_TOKEN),
        instance("bad", url, OTHER_INSTANCE, wrong_token),
        instance("ghost", url, UNKNOWN_INSTANCE, OTHER_TOKEN),
    ]

    poller = start_poller(poller_threads, fast_settings(redis_server.url, instances))
    wait_until(lambda: control.stats(INSTANCE)["deleted"] == 10, 30, "the good instance's 10 deletes")
    wait_until(
        lambda: poller.value("greenq_poller_errors_total", instance="bad", kind="auth") >= 2,
        10,
        "two refusals",
    )
    paused = poller.value("greenq_poller_instance_paused", instance="bad")
    poller.stop()

    assert control.stats(OTHER_INSTANCE)["queue_length"] == 10
    assert control.stats(OTHER_INSTANCE)["deleted"] == 0
    assert paused == 1
    assert poller.value("greenq_poller_errors_total", instance="ghost", kind="auth") >= 1
    assert len(queued_bodies(redis_conn)) == 10
    refusals = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any("refused instance 'bad'" in message for message in refusals)
    assert any("refused instance 'ghost'" in message for message in refusals)
    ours = [r for r in caplog.records if r.name.startswith("greenq")]
    for secret in (wrong_token, OTHER_TOKEN, INSTANCE_TOKEN):
        assert not any(secret in f"{r.getMessage()} {r.__dict__}" for r in ours)


def test_redis_down_at_enqueue_deletes_nothing_and_recovers(
    simulator: tuple[str, SimulatorControl], tmp_path: Path, poller_threads: list[PollerThread]
) -> None:
    url, control = simulator
    redis = LocalRedis(tmp_path / "redis", appendfsync="everysec").start()
    try:
        poller = start_poller(
            poller_threads, fast_settings(redis.url, [instance("alpha", url, INSTANCE, INSTANCE_TOKEN)])
        )
        redis.stop()
        control.add(INSTANCE, make_notifications(INSTANCE, 3))
        wait_until(
            lambda: poller.value("greenq_poller_errors_total", instance="alpha", kind="enqueue") >= 3,
            30,
            "failed enqueues",
        )
        kept = control.stats(INSTANCE)
        redis = LocalRedis(
            redis.data_dir, port=redis.port, password=redis.password, appendfsync="everysec"
        ).start()
        wait_until(
            lambda: control.stats(INSTANCE)["queue_length"] == 0, 30, "the queue to drain after Redis is back"
        )
        poller.stop()
        client = Redis.from_url(redis.url)
        try:
            bodies = queued_bodies(client)
        finally:
            client.close()
    finally:
        redis.stop()

    assert (kept["deleted"], kept["queue_length"]) == (0, 3)
    assert [identity(body) for body in bodies] == [(INSTANCE, 1_700_000_000 + n) for n in range(3)]


def test_a_stop_finishes_the_notification_in_hand(
    simulator: tuple[str, SimulatorControl],
    redis_server: LocalRedis,
    redis_conn: Redis,
    poller_threads: list[PollerThread],
) -> None:
    url, control = simulator
    control.inject(INSTANCE, "delay", 1, seconds=1.5, methods=["deleteNotification"])
    control.add(INSTANCE, make_notifications(INSTANCE, 2))
    poller = start_poller(
        poller_threads, fast_settings(redis_server.url, [instance("alpha", url, INSTANCE, INSTANCE_TOKEN)])
    )

    wait_until(lambda: len(queued_bodies(redis_conn)) == 1, 10, "the first enqueue")
    assert control.stats(INSTANCE)["deleted"] == 0  # its delete is in flight (delayed 1.5 s)
    poller.stop()

    stats = control.stats(INSTANCE)
    assert (stats["deleted"], stats["queue_length"]) == (1, 1)
    assert len(queued_bodies(redis_conn)) == 1


# --- the real command ------------------------------------------------------------------------------------


def test_greenq_poll_stops_cleanly_on_sigterm_and_never_logs_a_token(
    simulator: tuple[str, SimulatorControl], redis_server: LocalRedis, redis_conn: Redis, tmp_path: Path
) -> None:
    url, control = simulator
    control.add(INSTANCE, make_notifications(INSTANCE, 5))
    metrics_port = free_port()
    wrong_token = "9999wrong9999token9999"
    env = subprocess_env(
        redis_server,
        GREENQ_INSTANCES=f"good={url}|{INSTANCE}|{INSTANCE_TOKEN},bad={url}|{OTHER_INSTANCE}|{wrong_token}",
        GREENQ_RECEIVE_TIMEOUT="5",
        GREENQ_POLL_BACKOFF_BASE="0.05",
        GREENQ_POLL_AUTH_BACKOFF_BASE="0.2",
        GREENQ_POLL_AUTH_BACKOFF_CAP="0.5",
        GREENQ_POLLER_METRICS_PORT=str(metrics_port),
        GREENQ_LOG_LEVEL="DEBUG",
    )
    process = subprocess.Popen([*GREENQ, "poll"], env=env, cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    metrics = f"http://127.0.0.1:{metrics_port}/metrics"
    try:
        wait_until(lambda: control.stats(INSTANCE)["deleted"] == 5, 30, "5 deletes")

        def refused_twice() -> bool:
            try:
                return scrape(metrics, 'greenq_poller_errors_total{instance="bad",kind="auth"}') >= 2
            except httpx2.TransportError:
                return False

        wait_until(refused_twice, 30, "two refusals of the bad instance")
        assert scrape(metrics, 'greenq_poller_received_total{instance="good"}') == 5
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)

    assert process.returncode == 0
    assert len(queued_bodies(redis_conn)) == 5
    assert "GREEN API refused instance 'bad'" in stderr
    assert '"message":"poller stopped"' in stderr
    for secret in (INSTANCE_TOKEN, wrong_token, redis_server.password):
        assert secret not in stderr
