"""The real commands as separate processes: greenq validate, ingress (multi-process metrics), worker, up."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import orjson
import pytest
from redis import Redis

from greenq.core.contract import Envelope, NotificationQueue
from greenq.core.deadletters.store import DeadLetterStore
from greenq.core.outcomes import Outcome
from greenq.core.settings import CommonSettings
from greenq.local.procs import free_port, stop_process, wait_for_port
from greenq.local.redis_server import LocalRedis
from tests.conftest import SAMPLES_DIR, TOKEN, load_sample, mutate, sample_paths
from tests.support.metrics import scrape
from tests.support.ordering import waiting_envelopes
from tests.support.processes import GREENQ, REPO, clean_env, env_for, poll

PARTITIONS: int = CommonSettings.model_fields["partitions"].default

#: The ``greenq`` console script as pip writes it. Each process uvicorn spawns runs it again before its app
#: factory (``python -m greenq`` it does not), so the multi-process ingress is started through it.
CONSOLE_SCRIPT = (
    "import sys\nfrom greenq.cli.main import main\nif __name__ == '__main__':\n    sys.exit(main())\n"
)


def test_validate_accepts_every_sample_and_names_its_type() -> None:
    result = subprocess.run(
        [*GREENQ, "validate", *map(str, sample_paths())], capture_output=True, text=True, check=False
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "valid incomingMessageReceived/templateMessage" in result.stdout
    assert "valid outgoingMessageStatus" in result.stdout
    assert "valid outgoingMessageReceived/interactiveButtonsResponse" in result.stdout
    assert result.stdout.count(": valid ") == len(sample_paths())


def test_validate_fails_on_an_invalid_file_and_prints_why(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_bytes(orjson.dumps(mutate(load_sample("deviceInfo__default.json"), "instanceData.wid", 5)))
    good = SAMPLES_DIR / "deviceInfo__default.json"

    result = subprocess.run(
        [*GREENQ, "validate", str(good), str(broken)], capture_output=True, text=True, check=False
    )

    assert result.returncode == 1
    assert f"{broken}: invalid deviceInfo" in result.stdout
    assert "$.instanceData.wid" in result.stdout


@pytest.fixture
def ingress_process(redis_server: LocalRedis, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    port = free_port()
    metrics_dir = tmp_path / "metrics"
    script = tmp_path / "greenq"
    script.write_text(CONSOLE_SCRIPT)
    command = ["ingress", "--port", str(port), "--processes", "2", "--metrics-dir", str(metrics_dir)]
    python_path = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
    process = subprocess.Popen(
        [sys.executable, str(script), *command], env=env_for(redis_server, PYTHONPATH=python_path), cwd=REPO
    )
    try:
        wait_for_port("127.0.0.1", port, 30, process)
        yield f"http://127.0.0.1:{port}", metrics_dir
    finally:
        assert stop_process(process) == 0


def test_multi_process_ingress_metrics_add_up_across_processes(
    ingress_process: tuple[str, Path], redis_conn: Redis
) -> None:
    url, metrics_dir = ingress_process
    body = (SAMPLES_DIR / "incomingCall__default.json").read_bytes()
    sent = 0

    def both_processes_served() -> bool:
        nonlocal sent
        # A new connection per request lets the kernel hand it to either process.
        response = httpx.post(f"{url}/green-api/webhook/", content=body, headers={"Authorization": TOKEN})
        assert response.status_code == 200
        sent += 1
        return len(list(metrics_dir.glob("counter_*.db"))) >= 2

    poll(both_processes_served, 60, "both ingress processes to answer a webhook")
    for _ in range(3):  # several requests of one chat, whichever number the poll above needed
        both_processes_served()

    for _ in range(5):  # whichever process answers the scrape, it reports every process's requests
        assert scrape(f"{url}/metrics", 'greenq_ingress_requests_total{outcome="accepted"}') == sent
    # Every accepted notification is stored once. Counting RQ jobs would be wrong in ordered mode (the
    # default): one drain job stands for a whole partition, so two requests of one chat make one job.
    assert len(waiting_envelopes(redis_conn, PARTITIONS)) == sent


def test_worker_retries_after_a_delay_through_rqs_scheduler(
    redis_server: LocalRedis, redis_conn: Redis
) -> None:
    text = (SAMPLES_DIR / "incomingMessageReceived__textMessage.json").read_text()
    NotificationQueue(redis_conn).enqueue([Envelope(body=text, source="webhook")])
    port = free_port()
    env = env_for(
        redis_server,
        GREENQ_ROUTER="tests.support.routers:flaky_router",
        GREENQ_MAX_RETRIES="1",
        GREENQ_RETRY_BACKOFF="1",
        GREENQ_METRICS_PORT=str(port),
    )
    worker = subprocess.Popen([*GREENQ, "worker"], env=env, cwd=REPO)
    try:
        store = DeadLetterStore(redis_conn)
        poll(lambda: store.size() == 1, 60, "the notification to exhaust its retry")
        [letter] = store.entries()
        assert letter.outcome is Outcome.FAILED
        assert letter.envelope.attempt == 2
        metrics = f"http://127.0.0.1:{port}/metrics"
        assert scrape(metrics, 'greenq_handler_retries_total{type_webhook="incomingMessageReceived"}') == 1
        assert scrape(metrics, 'greenq_notifications_total{outcome="failed",type_webhook="incomingMess') == 1
        assert scrape(metrics, "greenq_dead_letters") == 1
        assert scrape(metrics, "greenq_workers_alive") == 1
    finally:
        assert stop_process(worker) == 0


def summary_of(process: subprocess.Popen[str]) -> str:
    """What ``greenq up`` prints up to its "Ctrl-C" line (the processes and their addresses)."""
    assert process.stdout is not None
    lines: list[str] = []
    while "Ctrl-C" not in "".join(lines):
        line = process.stdout.readline()
        assert line, f"greenq up exited early: {''.join(lines)}"
        lines.append(line)
    return "".join(lines)


def post_every_sample(port: int, token: str) -> None:
    for path in sample_paths():
        response = httpx.post(
            f"http://127.0.0.1:{port}/green-api/webhook/",
            content=path.read_bytes(),
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.status_code == 200


def test_up_runs_the_whole_pipeline_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    port = free_port()
    env = clean_env()
    process = subprocess.Popen(
        [*GREENQ, "up", "--ingress", "1", "--workers", "2", "--port", str(port), "--data-dir", str(tmp_path)],
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        worker_urls = re.findall(r"worker\s+pid \d+\s+(\S+)", summary_of(process))
        assert len(worker_urls) == 2
        token = (tmp_path / "token").read_text().strip()

        post_every_sample(port, token)

        def all_handled() -> bool:
            handled = sum(scrape(url, "greenq_notifications_total{") for url in worker_urls)
            return handled == len(sample_paths())

        poll(all_handled, 60, "every sample to be processed by the workers")
        handled = sum(scrape(url, 'greenq_notifications_total{outcome="handled"') for url in worker_urls)
        duplicate = sum(scrape(url, 'greenq_notifications_total{outcome="duplicate"') for url in worker_urls)
        # The pull-wrapped sample is the plain textMessage sample again, so dedup drops one of them.
        assert (handled, duplicate) == (len(sample_paths()) - 1, 1)
    finally:
        process.send_signal(signal.SIGINT)
        remaining, _ = process.communicate(timeout=60)
    assert process.returncode == 0
    assert "stopped" in remaining
