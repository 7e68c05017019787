"""Pull mode against the simulator and a real redis-server: order, retries, pauses, Redis outages, stops,
secrets; plus the pure pieces (settings, masking, backoff, env file) and the ``instance`` commands.
"""

from __future__ import annotations

import logging
import signal
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import orjson
import pytest
from pydantic import ValidationError
from redis import Redis
from rq.job import Job

from greenq.core.contract import SERIALIZER, notification_queue
from greenq.core.logs import FIELDS_ATTR
from greenq.core.settings import IngressSettings, PollerSettings
from greenq.local.procs import free_port, stop_process, wait_for_port
from greenq.local.redis_server import LocalRedis
from greenq.pull.backoff import Backoff
from greenq.pull.envfile import set_ingress_token, with_token
from greenq.pull.masking import RedactingFilter, mask_settings, mask_url
from greenq.simulator.control import SimulatorControl
from tests.support.metrics import scrape
from tests.support.poller import PollerThread, fast_settings, instance, settings_from
from tests.support.processes import GREENQ, clean_env, run_greenq, subprocess_env, wait_until
from tests.support.simulator import (
    CLEAN_UVICORN_EXITS,
    INSTANCE,
    INSTANCE_TOKEN,
    OTHER_INSTANCE,
    OTHER_TOKEN,
    identity,
    make_notifications,
    queued_bodies,
    running_simulator,
)

UNKNOWN_INSTANCE = 7700000000


@pytest.fixture
def simulator() -> Iterator[tuple[str, SimulatorControl]]:
    with running_simulator() as running:
        yield running


@pytest.fixture
def poller_threads() -> Iterator[list[PollerThread]]:
    """Pollers a test starts; all are stopped at the end, even when the test fails."""
    started: list[PollerThread] = []
    yield started
    for poller in started:
        poller.stop()


def start_poller(threads: list[PollerThread], settings: PollerSettings) -> PollerThread:
    poller = PollerThread(settings).start()
    threads.append(poller)
    return poller


# --- settings and pure pieces ---------------------------------------------------------------------------


def test_instances_parse_from_pairs_and_from_json() -> None:
    pairs = settings_from(
        instances="main=https://1101.api.green-api.com/|1101000001|abc123, second=http://127.0.0.1:9|2|def456"
    )
    from_json = settings_from(
        instances='[{"apiUrl": "https://h.example", "idInstance": 1101000001, "apiTokenInstance": "abc123"}]'
    )

    assert [(i.name, i.api_url, i.id_instance) for i in pairs.instances] == [
        ("main", "https://1101.api.green-api.com", "1101000001"),
        ("second", "http://127.0.0.1:9", "2"),
    ]
    assert pairs.instances[0].api_token.get_secret_value() == "abc123"
    assert from_json.instances[0].name == "1101000001"


def test_settings_come_from_greenq_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GREENQ_INSTANCES", "main=https://api.green-api.com|1101000001|abc123")
    monkeypatch.setenv("GREENQ_RECEIVE_TIMEOUT", "30")
    monkeypatch.setenv("GREENQ_POLL_BACKOFF_CAP", "12")
    monkeypatch.setenv("GREENQ_POLLER_METRICS_PORT", "9200")

    settings = settings_from()

    assert (settings.receive_timeout, settings.poll_backoff_cap, settings.poller_metrics_port) == (
        30,
        12.0,
        9200,
    )


@pytest.mark.parametrize(
    "value",
    [
        "main=https://api.green-api.com|1101000001|s3cret/Token",  # not a path segment
        "main=https://api.green-api.com|s3cretToken",  # a part missing
        "main=ftp://api.green-api.com|1101000001|s3cretToken",  # not http(s)
        "main=https://api.green-api.com|11x01|s3cretToken",  # idInstance not digits
        '[{"apiUrl": "https://h.example", "idInstance": 1, "apiTokenInstance": "s3cretToken", "x": 1}]',
        '[{"apiUrl": "https://api.green-api.com", "apiTokenInstance": "s3cretToken"',  # broken JSON
    ],
)
def test_bad_instances_are_refused_without_echoing_the_token(value: str) -> None:
    with pytest.raises(ValidationError) as caught:
        settings_from(instances=value)

    assert "s3cret" not in str(caught.value)
    assert "s3cret" not in repr(caught.value.errors(include_input=False))


def test_greenq_poll_refuses_bad_instances_without_echoing_the_token(tmp_path: Path) -> None:
    env = clean_env(GREENQ_INSTANCES="main=https://api.green-api.com|1101000001|s3cret/Token")

    result = run_greenq(["poll"], env, cwd=tmp_path)

    assert result.returncode == 2
    assert "invalid settings" in result.stderr
    assert "instance 'main'" in result.stderr
    assert "s3cret" not in result.stderr + result.stdout


def test_receive_timeout_must_be_5_to_60() -> None:
    for bad in (4, 61):
        with pytest.raises(ValidationError):
            settings_from(instances="a=http://h|1|tok1", receive_timeout=bad)


def test_settings_and_urls_are_masked_for_display() -> None:
    shown = mask_settings(
        {"webhookUrl": "https://user:pw@hooks.example/x", "webhookUrlToken": "abc", "incomingWebhook": "yes"}
    )

    assert shown == {
        "webhookUrl": "https://user:***@hooks.example/x",
        "webhookUrlToken": "***",
        "incomingWebhook": "yes",
    }
    assert mask_url("https://hooks.example/x") == "https://hooks.example/x"
    assert mask_settings({"webhookUrlToken": ""}) == {"webhookUrlToken": ""}


def test_redacting_filter_removes_secrets_from_messages_fields_and_tracebacks() -> None:
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "GET /waInstance1/m/%s", ("tok-123",), None)
    record.__dict__[FIELDS_ATTR] = {"url": "http://h/tok-123", "n": 1}
    try:
        raise RuntimeError("boom tok-123")
    except RuntimeError:
        import sys

        record.exc_info = sys.exc_info()

    RedactingFilter(["tok-123"]).filter(record)

    assert record.getMessage() == "GET /waInstance1/m/***"
    assert record.__dict__[FIELDS_ATTR] == {"url": "http://h/***", "n": 1}
    assert record.exc_text is not None
    assert "tok-123" not in record.exc_text
    assert "boom ***" in record.exc_text


def test_backoff_doubles_up_to_the_cap_with_jitter_and_resets() -> None:
    low = Backoff(1.0, 8.0, rng=lambda: 0.0)
    high = Backoff(1.0, 8.0, rng=lambda: 1.0)

    assert [low.next_delay() for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert [high.next_delay() for _ in range(6)] == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    low.reset()
    assert low.next_delay() == 0.5


def test_with_token_adds_or_replaces_an_entry_in_every_tokens_form() -> None:
    assert with_token("", "main", "T") == "main=T"
    assert with_token("a=1,main=old", "main", "T") == "a=1,main=T"
    assert with_token('"a=1"', "main", "T") == "a=1,main=T"
    assert with_token("bare-token", "main", "T") == "default=bare-token,main=T"
    assert with_token("a=1 # staging", "main", "T") == "a=1,main=T"
    assert with_token('{"a": "1"}', "main", "T") == '\'{"a":"1","main":"T"}\''


def test_set_ingress_token_keeps_other_lines_and_makes_the_file_private(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("# mine\nGREENQ_LOG_LEVEL=DEBUG\nexport GREENQ_TOKENS=other=x1,main=old\n")
    env_file.chmod(0o644)

    set_ingress_token(env_file, "main", "new-token")
    set_ingress_token(tmp_path / "fresh.env", "main", "t2")

    assert (
        env_file.read_text()
        == "# mine\nGREENQ_LOG_LEVEL=DEBUG\nexport GREENQ_TOKENS=other=x1,main=new-token\n"
    )
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    assert (tmp_path / "fresh.env").read_text() == "GREENQ_TOKENS=main=t2\n"
    assert stat.S_IMODE((tmp_path / "fresh.env").stat().st_mode) == 0o600


# --- the poller against the simulator -------------------------------------------------------------------


def queued_envelopes(redis: Redis) -> list[dict[str, Any]]:
    raw_ids = redis.lrange(notification_queue(redis).key, 0, -1)
    job_ids = [raw.decode() if isinstance(raw, bytes) else str(raw) for raw in raw_ids]
    jobs = Job.fetch_many(job_ids, connection=redis, serializer=SERIALIZER)
    return [dict(envelope) for job in jobs if job is not None for envelope in job.args[0]]


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

    wait_until(lambda: notification_queue(redis_conn).count == 1, 10, "the first enqueue")
    assert control.stats(INSTANCE)["deleted"] == 0  # its delete is in flight (delayed 1.5 s)
    poller.stop()

    stats = control.stats(INSTANCE)
    assert (stats["deleted"], stats["queue_length"]) == (1, 1)
    assert notification_queue(redis_conn).count == 1


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
    assert notification_queue(redis_conn).count == 5
    assert "GREEN API refused instance 'bad'" in stderr
    assert '"message":"poller stopped"' in stderr
    for secret in (INSTANCE_TOKEN, wrong_token, redis_server.password):
        assert secret not in stderr


def test_instance_configure_push_then_show_then_pull(
    simulator: tuple[str, SimulatorControl], redis_server: LocalRedis, tmp_path: Path
) -> None:
    url, _ = simulator
    env_file = tmp_path / "ingress.env"
    env_file.write_text("GREENQ_TOKENS=other=keep-me\n")
    env = subprocess_env(redis_server, GREENQ_INSTANCES=f"main={url}|{INSTANCE}|{INSTANCE_TOKEN}")

    def greenq(*args: str) -> subprocess.CompletedProcess[str]:
        return run_greenq(["instance", *args], env, cwd=tmp_path)

    push = greenq(
        "configure",
        "--push",
        "https://hooks.example/green-api/webhook/",
        "--enable",
        "incomingWebhook,stateWebhook",
        "--disable",
        "outgoingWebhook",
        "--env-file",
        str(env_file),
    )
    settings_after_push = httpx2.get(f"{url}/waInstance{INSTANCE}/getSettings/{INSTANCE_TOKEN}").json()
    show = greenq("show")
    pull = greenq("configure", "--pull")
    settings_after_pull = httpx2.get(f"{url}/waInstance{INSTANCE}/getSettings/{INSTANCE_TOKEN}").json()
    typo = greenq("configure", "--pull", "--enable", "incomingWebhooks")

    assert push.returncode == 0, push.stderr
    token = settings_after_push["webhookUrlToken"]
    assert len(token) >= 40
    assert env_file.read_text() == f"GREENQ_TOKENS=other=keep-me,main={token}\n"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    ingress = IngressSettings(_env_file=env_file, redis_url="redis://127.0.0.1:1/0")  # type: ignore[call-arg]
    ingress_tokens = ingress.tokens
    assert ingress_tokens["main"].get_secret_value() == token
    assert settings_after_push["webhookUrl"] == "https://hooks.example/green-api/webhook/"
    assert (settings_after_push["incomingWebhook"], settings_after_push["stateWebhook"]) == ("yes", "yes")
    assert settings_after_push["outgoingWebhook"] == "no"
    assert "within about 5 minutes" in push.stdout
    assert show.returncode == 0, show.stderr
    assert orjson.loads(show.stdout)["webhookUrlToken"] == "***"
    for output in (push.stdout, push.stderr, show.stdout, show.stderr, pull.stdout, pull.stderr):
        assert token not in output
        assert INSTANCE_TOKEN not in output
    assert pull.returncode == 0, pull.stderr
    assert settings_after_pull["webhookUrl"] == ""
    assert typo.returncode == 2
    assert "unknown notification switch" in typo.stderr


def test_instance_commands_name_a_missing_instance_and_api_errors(
    simulator: tuple[str, SimulatorControl], redis_server: LocalRedis, tmp_path: Path
) -> None:
    url, _ = simulator
    env = subprocess_env(redis_server, GREENQ_INSTANCES=f"main={url}|{INSTANCE}|wrongToken123")

    unknown = run_greenq(["instance", "show", "--instance", "nope"], env, cwd=tmp_path)
    refused = run_greenq(["instance", "show"], env, cwd=tmp_path)

    assert unknown.returncode == 2
    assert "no instance 'nope'" in unknown.stderr
    assert refused.returncode == 1
    assert "getSettings of instance 'main' refused with HTTP 401" in refused.stderr
    assert "wrongToken123" not in refused.stderr + refused.stdout


def test_configure_push_makes_the_ingress_accept_green_apis_deliveries(
    redis_server: LocalRedis, redis_conn: Redis, tmp_path: Path
) -> None:
    port = free_port()
    with running_simulator(webhook_pause=0.2) as (url, control):
        env = subprocess_env(redis_server, GREENQ_INSTANCES=f"main={url}|{INSTANCE}|{INSTANCE_TOKEN}")
        # The default --env-file ./.env is the file the ingress started here (cwd) reads.
        configure = run_greenq(
            ["instance", "configure", "--push", f"http://127.0.0.1:{port}/green-api/webhook/"],
            env,
            cwd=tmp_path,
        )
        assert configure.returncode == 0, configure.stderr
        ingress = subprocess.Popen(
            [*GREENQ, "ingress", "--port", str(port)], env=subprocess_env(redis_server), cwd=tmp_path
        )
        try:
            wait_for_port("127.0.0.1", port, 30, ingress)
            control.add(INSTANCE, make_notifications(INSTANCE, 5))
            wait_until(lambda: control.stats(INSTANCE)["delivered"] == 5, 30, "5 deliveries")
            failures = control.stats(INSTANCE)["delivery_failures"]
        finally:
            assert stop_process(ingress) in CLEAN_UVICORN_EXITS

    envelopes = queued_envelopes(redis_conn)
    assert len(envelopes) == 5
    assert {(envelope["source"], envelope["token_id"]) for envelope in envelopes} == {("webhook", "main")}
    assert failures == 0  # the ingress knew the token GREEN API sent from the first delivery on
