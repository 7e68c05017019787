"""``greenq instance show|configure``: push mode set up end to end (the token lands in the ingress's env
file and GREEN API's deliveries are accepted), pull mode back, and clear errors that never echo a token."""

from __future__ import annotations

import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import orjson
from redis import Redis

from greenq.core.settings import IngressSettings
from greenq.local.procs import free_port, stop_process, wait_for_port
from greenq.local.redis_server import LocalRedis
from greenq.simulator.control import SimulatorControl
from tests.support.processes import GREENQ, run_greenq, subprocess_env, wait_until
from tests.support.simulator import (
    CLEAN_UVICORN_EXITS,
    INSTANCE,
    INSTANCE_TOKEN,
    make_notifications,
    queued_envelopes,
    running_simulator,
)

PUSH_URL = "https://hooks.example/green-api/webhook/"
PUSH_SWITCHES = ("--enable", "incomingWebhook,stateWebhook", "--disable", "outgoingWebhook")


@dataclass(frozen=True)
class PushShowPull:
    """Each step's command result, and the instance's settings (as GREEN API holds them) after push, pull."""

    push: subprocess.CompletedProcess[str]
    after_push: dict[str, Any]
    show: subprocess.CompletedProcess[str]
    pull: subprocess.CompletedProcess[str]
    after_pull: dict[str, Any]
    typo: subprocess.CompletedProcess[str]

    def outputs(self) -> tuple[str, ...]:
        return tuple(
            text for step in (self.push, self.show, self.pull) for text in (step.stdout, step.stderr)
        )


def instance_settings(url: str) -> dict[str, Any]:
    """getSettings of the main instance, straight from the simulator."""
    settings: dict[str, Any] = httpx2.get(f"{url}/waInstance{INSTANCE}/getSettings/{INSTANCE_TOKEN}").json()
    return settings


def push_show_pull(url: str, env: dict[str, str], env_file: Path, cwd: Path) -> PushShowPull:
    """configure --push (token into ``env_file``), show, configure --pull, then a mistyped switch."""

    def greenq(*args: str) -> subprocess.CompletedProcess[str]:
        return run_greenq(["instance", *args], env, cwd=cwd)

    push = greenq("configure", "--push", PUSH_URL, *PUSH_SWITCHES, "--env-file", str(env_file))
    after_push = instance_settings(url)
    show = greenq("show")
    pull = greenq("configure", "--pull")
    after_pull = instance_settings(url)
    typo = greenq("configure", "--pull", "--enable", "incomingWebhooks")
    return PushShowPull(push, after_push, show, pull, after_pull, typo)


def assert_the_ingress_reads_the_token(env_file: Path, token: str) -> None:
    """The pushed token sits beside the other one in the private env file the ingress reads."""
    assert len(token) >= 40
    assert env_file.read_text() == f"GREENQ_TOKENS=other=keep-me,main={token}\n"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    ingress = IngressSettings(_env_file=env_file, redis_url="redis://127.0.0.1:1/0")  # type: ignore[call-arg]
    ingress_tokens = ingress.tokens
    assert ingress_tokens["main"].get_secret_value() == token


def test_instance_configure_push_then_show_then_pull(
    simulator: tuple[str, SimulatorControl], redis_server: LocalRedis, tmp_path: Path
) -> None:
    url, _ = simulator
    env_file = tmp_path / "ingress.env"
    env_file.write_text("GREENQ_TOKENS=other=keep-me\n")
    env = subprocess_env(redis_server, GREENQ_INSTANCES=f"main={url}|{INSTANCE}|{INSTANCE_TOKEN}")

    run = push_show_pull(url, env, env_file, tmp_path)

    assert run.push.returncode == 0, run.push.stderr
    token = run.after_push["webhookUrlToken"]
    assert_the_ingress_reads_the_token(env_file, token)
    assert run.after_push["webhookUrl"] == PUSH_URL
    assert (run.after_push["incomingWebhook"], run.after_push["stateWebhook"]) == ("yes", "yes")
    assert run.after_push["outgoingWebhook"] == "no"
    assert "within about 5 minutes" in run.push.stdout
    assert run.show.returncode == 0, run.show.stderr
    assert orjson.loads(run.show.stdout)["webhookUrlToken"] == "***"
    for output in run.outputs():
        assert token not in output
        assert INSTANCE_TOKEN not in output
    assert run.pull.returncode == 0, run.pull.stderr
    assert run.after_pull["webhookUrl"] == ""
    assert run.typo.returncode == 2
    assert "unknown notification switch" in run.typo.stderr


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
