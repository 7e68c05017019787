"""The GREEN API simulator: checked against GREEN API's own Python SDK, its fault injection, and push delivery
to a recording webhook and to a real ``greenq ingress`` that restarts midway.
"""

from __future__ import annotations

import asyncio
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx2
import orjson
import pytest
from redis import Redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from greenq.local.procs import free_port, stop_process, wait_for_port
from greenq.local.redis_server import LocalRedis
from greenq.simulator.control import SimulatorControl
from greenq.simulator.server import ServerThread
from tests.conftest import SAMPLES_DIR
from tests.support.processes import GREENQ, subprocess_env, wait_until
from tests.support.simulator import (
    CLEAN_UVICORN_EXITS,
    INSTANCE,
    INSTANCE_TOKEN,
    identity,
    make_notifications,
    queued_bodies,
    running_simulator,
    sdk,
)

# --- the official SDK against the simulator ------------------------------------------------------------


def test_sdk_receives_the_head_until_it_is_deleted_then_the_next(
    simulator: tuple[str, SimulatorControl],
) -> None:
    url, control = simulator
    first, second = make_notifications(INSTANCE, 2)
    control.add(INSTANCE, [first, second])
    api = sdk(url)

    received = api.receiving.receiveNotification(receiveTimeout=5)
    again = api.receiving.receiveNotification(receiveTimeout=5)
    deleted = api.receiving.deleteNotification(received.data["receiptId"])
    following = api.receiving.receiveNotification()

    assert received.code == 200
    assert isinstance(received.data["receiptId"], int)
    assert received.data["body"] == first
    assert again.data["receiptId"] == received.data["receiptId"]
    assert (deleted.code, deleted.data) == (200, {"result": True})
    assert following.data["body"] == second


def test_sdk_gets_result_false_for_an_unknown_receipt_and_null_from_an_empty_queue(
    simulator: tuple[str, SimulatorControl],
) -> None:
    url, _ = simulator
    api = sdk(url)

    unknown = api.receiving.deleteNotification(424242)
    started = time.monotonic()
    empty = api.receiving.receiveNotification(receiveTimeout=5)

    assert (unknown.code, unknown.data) == (200, {"result": False})
    assert empty.code == 200
    assert empty.data is None
    assert time.monotonic() - started >= 4.9  # the long poll waited its receiveTimeout


def test_sdk_reads_and_changes_settings(simulator: tuple[str, SimulatorControl]) -> None:
    url, _ = simulator
    api = sdk(url)

    before = api.account.getSettings()
    saved = api.account.setSettings({"incomingWebhook": "yes", "stateWebhook": "yes", "webhookUrl": ""})
    after = api.account.getSettings()

    assert before.code == 200
    assert before.data["webhookUrl"] == ""
    assert before.data["incomingWebhook"] == "no"
    assert (saved.code, saved.data) == (200, {"saveSettings": True})
    assert after.data["incomingWebhook"] == after.data["stateWebhook"] == "yes"


def test_sdk_sees_401_for_a_wrong_token_and_403_for_an_unknown_instance(
    simulator: tuple[str, SimulatorControl],
) -> None:
    url, _ = simulator

    assert sdk(url, token="not-the-token").account.getSettings().code == 401
    assert sdk(url, id_instance=7700000000).receiving.receiveNotification().code == 403


def test_set_settings_refuses_unknown_fields_and_bad_values(simulator: tuple[str, SimulatorControl]) -> None:
    url, _ = simulator
    api = sdk(url)

    assert api.account.setSettings({"incomingWebhook": "maybe"}).code == 400
    assert api.account.setSettings({"noSuchSetting": "yes"}).code == 400
    assert api.account.setSettings({}).code == 400


# --- protocol details --------------------------------------------------------------------------------


def _api(url: str, method: str, *extra: str) -> str:
    return "/".join((url, f"waInstance{INSTANCE}", method, INSTANCE_TOKEN, *extra))


def test_long_poll_answers_as_soon_as_a_notification_arrives(simulator: tuple[str, SimulatorControl]) -> None:
    url, control = simulator
    [notification] = make_notifications(INSTANCE, 1)

    with ThreadPoolExecutor(1) as pool:
        started = time.monotonic()
        pending = pool.submit(httpx2.get, _api(url, "receiveNotification"), params={"receiveTimeout": 30})
        time.sleep(0.3)  # the poll is waiting now (it cannot have returned: the queue was empty)
        control.add(INSTANCE, [notification])
        response = pending.result(timeout=10)

    assert response.json()["body"] == notification
    assert time.monotonic() - started < 5


def test_the_body_comes_back_byte_for_byte(simulator: tuple[str, SimulatorControl]) -> None:
    url, control = simulator
    quirky = (SAMPLES_DIR / "incomingBlock__default.json").read_bytes().strip()
    quirky = quirky.replace(b'"chatState"', b'"chatState": "x", "chatState"')  # a duplicated key

    control.add(INSTANCE, [quirky])
    response = httpx2.get(_api(url, "receiveNotification"), params={"receiveTimeout": 5})

    assert response.content.endswith(b',"body":' + quirky + b"}")


def test_receive_timeout_outside_5_to_60_is_a_bad_request(simulator: tuple[str, SimulatorControl]) -> None:
    url, _ = simulator

    assert httpx2.get(_api(url, "receiveNotification"), params={"receiveTimeout": 1}).status_code == 400
    assert httpx2.get(_api(url, "receiveNotification"), params={"receiveTimeout": 61}).status_code == 400
    assert httpx2.get(_api(url, "noSuchMethod")).status_code == 404
    assert httpx2.post(_api(url, "getSettings")).status_code == 404


def test_faults_fail_delay_and_drop_the_next_calls(simulator: tuple[str, SimulatorControl]) -> None:
    url, control = simulator
    settings_url = _api(url, "getSettings")

    control.inject(INSTANCE, "fail", 2, status=502)
    statuses = [httpx2.get(settings_url).status_code for _ in range(3)]
    control.inject(INSTANCE, "delay", 1, seconds=0.5)
    started = time.monotonic()
    delayed = httpx2.get(settings_url)
    elapsed = time.monotonic() - started
    control.inject(INSTANCE, "drop", 1)
    with pytest.raises(httpx2.RemoteProtocolError):
        httpx2.get(settings_url)
    control.inject(INSTANCE, "fail", 1, methods=["deleteNotification"])
    untouched = httpx2.get(settings_url)

    assert statuses == [502, 502, 200]
    assert delayed.status_code == 200
    assert elapsed >= 0.5
    assert untouched.status_code == 200
    stats = control.stats(INSTANCE)
    assert stats["faults_injected"] == 4
    assert stats["faults_pending"] == 1


# --- push delivery ------------------------------------------------------------------------------------


class RecordingWebhook:
    """A webhook endpoint that records what arrives and answers from a script (then 200)."""

    def __init__(self, script: list[tuple[float, int]]) -> None:
        self.script = list(script)
        self.calls: list[tuple[str | None, bytes]] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self._lock = threading.Lock()

    async def endpoint(self, request: Request) -> Response:
        with self._lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            self.calls.append((request.headers.get("authorization"), await request.body()))
            delay, status = self.script.pop(0) if self.script else (0.0, 200)
        await asyncio.sleep(delay)
        with self._lock:
            self.in_flight -= 1
        return Response(status_code=status)


def test_push_sends_the_head_one_at_a_time_and_resends_it_until_a_200() -> None:
    webhook = RecordingWebhook([(0.6, 200), (0.0, 200), (0.0, 500)])
    receiver = ServerThread(
        Starlette(routes=[Route("/hook", webhook.endpoint, methods=["POST"])]), "127.0.0.1", free_port()
    )
    receiver.start()
    notifications = make_notifications(INSTANCE, 3)
    try:
        with running_simulator(webhook_timeout=0.3, webhook_pause=0.5) as (url, control):
            control.add(INSTANCE, notifications)
            api = sdk(url)
            api.account.setSettings(
                {"webhookUrl": f"{receiver.url}/hook", "webhookUrlToken": "Bearer hook-secret"}
            )
            wait_until(lambda: control.stats(INSTANCE)["queue_length"] == 0, 20, "all three delivered")
            stats = control.stats(INSTANCE)
    finally:
        receiver.stop()

    bodies = [orjson.loads(body) for _, body in webhook.calls]
    # 1st try of #1 outlived the 0.3 s timeout (resent after the pause); #2 got a 500 once.
    assert bodies == [
        notifications[0],
        notifications[0],
        notifications[1],
        notifications[1],
        notifications[2],
    ]
    assert {auth for auth, _ in webhook.calls} == {"Bearer hook-secret"}
    assert webhook.most_in_flight == 1
    assert (stats["delivered"], stats["delivery_attempts"], stats["delivery_failures"]) == (3, 5, 2)


def test_receive_notification_stays_empty_while_the_instance_is_in_push_mode(
    simulator: tuple[str, SimulatorControl],
) -> None:
    url, control = simulator
    api = sdk(url)
    api.account.setSettings({"webhookUrl": "http://127.0.0.1:9/unreachable"})
    control.add(INSTANCE, make_notifications(INSTANCE, 1))

    assert api.receiving.receiveNotification(receiveTimeout=5).data is None
    assert control.stats(INSTANCE)["queue_length"] == 1


@pytest.fixture
def ingress_port() -> int:
    return free_port()


def _start_ingress(port: int, env: dict[str, str], cwd: Path) -> subprocess.Popen[bytes]:
    process = subprocess.Popen([*GREENQ, "ingress", "--port", str(port)], env=env, cwd=cwd)
    wait_for_port("127.0.0.1", port, 30, process)
    return process


def test_push_into_a_real_ingress_loses_nothing_when_it_restarts_midway(
    redis_server: LocalRedis, redis_conn: Redis, tmp_path: Path, ingress_port: int
) -> None:
    hook_token = "push-test-webhook-token-5d1e"
    env = subprocess_env(redis_server, GREENQ_TOKENS=f"sim={hook_token}")
    notifications = make_notifications(INSTANCE, 200)
    ingress = _start_ingress(ingress_port, env, tmp_path)
    try:
        with running_simulator(webhook_timeout=2.0, webhook_pause=0.2) as (url, control):
            sdk(url).account.setSettings(
                {
                    "webhookUrl": f"http://127.0.0.1:{ingress_port}/green-api/webhook/",
                    "webhookUrlToken": hook_token,
                }
            )
            control.add(INSTANCE, notifications)
            wait_until(lambda: control.stats(INSTANCE)["delivered"] >= 50, 30, "50 deliveries")
            assert stop_process(ingress) in CLEAN_UVICORN_EXITS
            pending_while_down = control.stats(INSTANCE)["queue_length"]
            wait_until(lambda: control.stats(INSTANCE)["delivery_failures"] >= 2, 10, "failed deliveries")
            ingress = _start_ingress(ingress_port, env, tmp_path)
            wait_until(lambda: control.stats(INSTANCE)["queue_length"] == 0, 60, "the queue to drain")
            stats = control.stats(INSTANCE)
    finally:
        assert stop_process(ingress) in CLEAN_UVICORN_EXITS

    assert pending_while_down > 0, "the restart happened after everything was delivered"
    assert stats["delivered"] == 200
    assert [identity(body) for body in queued_bodies(redis_conn)] == [
        identity(orjson.dumps(n)) for n in notifications
    ]
