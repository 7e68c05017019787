"""``greenq reconcile`` as a command: settings it refuses, one-shot summaries, the periodic mode's metrics and
SIGTERM, one-chat mode, and tokens kept out of everything it prints. Real processes, real redis-server.
"""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import httpx2
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from greenq.local.procs import free_port, stop_process
from greenq.local.redis_server import LocalRedis
from greenq.simulator.control import SimulatorControl
from tests.support.processes import GREENQ, wait_until
from tests.support.reconcile import TOKENS, journal_only, make_messages, reconcile_env, run_reconcile
from tests.support.simulator import INSTANCE, OTHER_INSTANCE

pytestmark = pytest.mark.usefixtures("redis_conn")  # each test starts with an empty Redis


def test_a_period_longer_than_the_window_allows_is_refused(tmp_path: Path, redis_server: LocalRedis) -> None:
    env = reconcile_env(redis_server, "http://127.0.0.1:9", GREENQ_RECONCILE_WINDOW_MINUTES="5")
    result = subprocess.run(
        [*GREENQ, "reconcile", "--every", "300"], env=env, cwd=tmp_path, capture_output=True, check=False
    )
    assert result.returncode == 2
    assert "raise GREENQ_RECONCILE_WINDOW_MINUTES" in result.stderr.decode()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"GREENQ_DEDUP_WINDOW_SECONDS": "0"}, "reconciliation needs deduplication"),
        ({"GREENQ_DEDUP_WINDOW_SECONDS": "600"}, "further back than the dedup window"),
    ],
)
def test_settings_that_would_deliver_twice_are_refused(
    tmp_path: Path, redis_server: LocalRedis, overrides: dict[str, str], message: str
) -> None:
    env = reconcile_env(redis_server, "http://127.0.0.1:9", **overrides)
    result = subprocess.run([*GREENQ, "reconcile"], env=env, cwd=tmp_path, capture_output=True, check=False)
    assert result.returncode == 2
    assert message in result.stderr.decode()


def test_tokens_never_appear_in_output_even_when_calls_fail(
    simulator: tuple[str, SimulatorControl],
    redis_server: LocalRedis,
    tmp_path: Path,
) -> None:
    url, control = simulator
    control.inject(INSTANCE, "drop", 20, methods=["lastIncomingMessages"])  # connection broken mid-answer
    env = reconcile_env(
        redis_server,
        url,
        GREENQ_LOG_LEVEL="DEBUG",
        GREENQ_RECONCILE_MAX_ATTEMPTS="2",
        GREENQ_INSTANCES=f"first={url}|{INSTANCE}|{TOKENS[INSTANCE]},"
        f"second={url}|{OTHER_INSTANCE}|{TOKENS[OTHER_INSTANCE][::-1]}",  # a wrong token: 401
    )

    result = subprocess.run([*GREENQ, "reconcile"], env=env, cwd=tmp_path, capture_output=True, check=False)

    output = result.stdout.decode() + result.stderr.decode()
    assert result.returncode == 1
    summaries = {s["instance"]: s for s in map(orjson.loads, result.stdout.splitlines())}
    assert "failed" in summaries["first"]["error"]
    assert "HTTP 401" in summaries["second"]["error"]
    for token in (TOKENS[INSTANCE], TOKENS[OTHER_INSTANCE], TOKENS[OTHER_INSTANCE][::-1]):
        assert token not in output


def test_periodic_mode_serves_metrics_and_stops_on_sigterm(
    simulator: tuple[str, SimulatorControl],
    redis_server: LocalRedis,
    tmp_path: Path,
) -> None:
    url, control = simulator
    journal_only(control, INSTANCE, make_messages(INSTANCE, 7))
    port = free_port()
    env = reconcile_env(redis_server, url, GREENQ_RECONCILE_METRICS_PORT=str(port))
    process = subprocess.Popen(
        [*GREENQ, "reconcile", "--every", "0.2"], env=env, cwd=tmp_path, stdout=subprocess.DEVNULL
    )
    samples: dict[tuple[str, str], float] = {}
    try:
        wait_until(lambda: scrape(port, samples) >= 2, 30, "two passes in the metrics", interval=0.1)
    finally:
        code = stop_process(process, sig=signal.SIGTERM)
    assert code == 0
    assert samples[("greenq_reconcile_recovered_total", "first")] == 7  # later passes recover nothing
    assert samples[("greenq_reconcile_recovered_total", "second")] == 0
    assert samples[("greenq_reconcile_last_success_timestamp_seconds", "second")] > 0


def scrape(port: int, samples: dict[tuple[str, str], float]) -> float:
    """Fill ``samples`` from the metrics page; how many passes instance "first" has completed."""
    try:
        page = httpx2.get(f"http://127.0.0.1:{port}/metrics", trust_env=False).text
    except httpx2.HTTPError:
        return 0
    for family in text_string_to_metric_families(page):
        for sample in family.samples:
            if "instance" in sample.labels:
                samples[(sample.name, sample.labels["instance"])] = sample.value
    return samples.get(("greenq_reconcile_checked_total", "first"), 0) / 7


def test_one_shot_cli_recovers_and_prints_a_summary_per_instance(
    simulator: tuple[str, SimulatorControl],
    redis_server: LocalRedis,
    tmp_path: Path,
) -> None:
    url, control = simulator
    journal_only(control, OTHER_INSTANCE, make_messages(OTHER_INSTANCE, 2))

    summaries, _ = run_reconcile(reconcile_env(redis_server, url), tmp_path, "--instance", "second")

    assert summaries == {
        "second": {
            "instance": "second",
            "checked": 2,
            "deferred": 0,
            "too_old": 0,
            "recovered": 2,
            "unmapped": 0,
        }
    }


def test_chat_mode_needs_one_instance(tmp_path: Path, redis_server: LocalRedis) -> None:
    env = reconcile_env(redis_server, "http://127.0.0.1:9")
    result = subprocess.run(
        [*GREENQ, "reconcile", "--chat", "79001234567@c.us"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        check=False,
    )
    assert result.returncode == 2
    assert "--chat needs exactly one instance" in result.stderr.decode()
