"""Pull mode as real processes: ``greenq simulator`` (both test instances), then ``greenq poll`` and
``greenq worker`` started by the test, all against the test's redis-server: the ``pull_pipeline`` fixture."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from redis import Redis

from greenq.local.procs import free_port, stop_process, wait_for_port
from greenq.local.redis_server import LocalRedis
from greenq.simulator.control import SimulatorControl
from tests.support.processes import GREENQ, subprocess_env
from tests.support.simulator import (
    CLEAN_UVICORN_EXITS,
    INSTANCE,
    INSTANCE_TOKEN,
    OTHER_INSTANCE,
    OTHER_TOKEN,
    instances_env,
)

INSTANCES = (INSTANCE, OTHER_INSTANCE)


@dataclass
class Pipeline:
    """The processes of one pull-mode run and where their logs go."""

    redis_server: LocalRedis
    workdir: Path
    sim_url: str
    control: SimulatorControl
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    poller_logs: list[Path] = field(default_factory=list)

    def env(self, **extra: str) -> dict[str, str]:
        return subprocess_env(
            self.redis_server,
            GREENQ_INSTANCES=instances_env(self.sim_url),
            GREENQ_RECEIVE_TIMEOUT="5",
            GREENQ_POLL_BACKOFF_BASE="0.02",
            GREENQ_POLL_BACKOFF_CAP="0.2",
            GREENQ_POLLER_METRICS_PORT="0",
            GREENQ_METRICS_PORT="0",
            **extra,
        )

    def start_poller(self) -> subprocess.Popen[bytes]:
        log = self.workdir / f"poller-{len(self.poller_logs) + 1}.log"
        self.poller_logs.append(log)
        with log.open("wb") as stderr:
            process = subprocess.Popen([*GREENQ, "poll"], env=self.env(), cwd=self.workdir, stderr=stderr)
        self.processes.append(process)
        return process

    def start_worker(self) -> subprocess.Popen[bytes]:
        with (self.workdir / "worker.log").open("wb") as stderr:
            process = subprocess.Popen(
                [*GREENQ, "worker", "--name", "e2e-worker"],
                env=self.env(GREENQ_LOG_LEVEL="WARNING"),  # an INFO line per notification costs CPU here
                cwd=self.workdir,
                stderr=stderr,
            )
        self.processes.append(process)
        return process

    def stats(self) -> dict[int, dict[str, int]]:
        return {id_instance: self.control.stats(id_instance) for id_instance in INSTANCES}

    def deleted(self) -> int:
        return sum(stats["deleted"] for stats in self.stats().values())


@pytest.fixture
def pull_pipeline(redis_server: LocalRedis, redis_conn: Redis, tmp_path: Path) -> Iterator[Pipeline]:
    port = free_port()
    simulator = subprocess.Popen(
        [
            *GREENQ,
            "simulator",
            "--port",
            str(port),
            "--log-level",
            "WARNING",
            "--instances",
            f"{INSTANCE}={INSTANCE_TOKEN},{OTHER_INSTANCE}={OTHER_TOKEN}",
        ],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
    )
    wait_for_port("127.0.0.1", port, 30, simulator)
    control = SimulatorControl(f"http://127.0.0.1:{port}")
    running = Pipeline(redis_server, tmp_path, f"http://127.0.0.1:{port}", control)
    try:
        yield running
    finally:
        for process in running.processes:
            if process.poll() is None:  # a failed test left it running
                stop_process(process, sig=signal.SIGKILL)
        control.close()
        assert stop_process(simulator) in CLEAN_UVICORN_EXITS
