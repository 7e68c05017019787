"""``greenq up``: the whole pipeline on one machine, no Docker.

Redis (a private ``redis-server`` with production persistence, or ``--redis-url``), N ingress processes,
M workers; runs until Ctrl-C or SIGTERM, then stops everything in order: ingress first (no new 200s),
then workers (each finishes its current job), then Redis.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TextIO

from greenq.local_redis import LocalRedis
from greenq.procs import free_port, stop_process, wait_for_port


@dataclass(frozen=True)
class UpOptions:
    """What to start."""

    ingress: int = 1
    workers: int = 2
    port: int = 8080
    data_dir: Path = Path(".greenq")
    redis_url: str | None = None
    webhook_path: str = "/green-api/webhook/"


@dataclass
class Child:
    """A process we started, with what the summary says about it."""

    role: str
    #: Own session: a terminal's Ctrl-C reaches only ``greenq up``, which stops children in order.
    process: subprocess.Popen[bytes]
    url: str


@dataclass
class LocalPipeline:
    """Starts and stops the local topology."""

    options: UpOptions
    out: TextIO = sys.stdout
    children: list[Child] = field(default_factory=list)
    redis: LocalRedis | None = None
    token_file: Path | None = None

    def start(self) -> None:
        data_dir = self.options.data_dir.resolve()
        data_dir.mkdir(parents=True, exist_ok=True)
        redis_url = self.options.redis_url or self._start_redis(data_dir)
        env = self._environment(data_dir, redis_url)
        for index in range(self.options.ingress):
            self._start_ingress(index, env, data_dir)
        for index in range(self.options.workers):
            self._start_worker(index, env)

    def stop(self) -> None:
        for role in ("ingress", "worker"):
            for child in self.children:
                if child.role == role:
                    stop_process(child.process, timeout=30)
        if self.redis is not None:
            self.redis.stop()

    def summary(self) -> str:
        lines = ["greenq is running:"]
        for child in self.children:
            lines.append(f"  {child.role:<8} pid {child.process.pid:<7} {child.url}")
        if self.token_file is not None:
            first = next(child for child in self.children if child.role == "ingress")
            lines.append(f"  token    in {self.token_file} (name 'local')")
            lines.append(
                f'  try:     curl -H "Authorization: Bearer $(cat {self.token_file})" '
                f"--data @tests/samples/incomingMessageReceived__textMessage.json "
                f"{first.url}{self.options.webhook_path}"
            )
        lines.append("  Ctrl-C stops everything.")
        return "\n".join(lines)

    def wait(self, stop_event: threading.Event) -> int:
        """Block until asked to stop (0) or a child dies on its own (1)."""
        while not stop_event.wait(0.5):
            for child in self.children:
                if child.process.poll() is not None:
                    self.out.write(
                        f"{child.role} pid {child.process.pid} exited with {child.process.returncode}\n"
                    )
                    return 1
        return 0

    def _start_redis(self, data_dir: Path) -> str:
        self.redis = LocalRedis(data_dir / "redis").start()
        self.out.write(f"redis-server on 127.0.0.1:{self.redis.port} (AOF, appendfsync always)\n")
        return self.redis.url

    def _environment(self, data_dir: Path, redis_url: str) -> dict[str, str]:
        env = dict(os.environ, GREENQ_REDIS_URL=redis_url, GREENQ_WEBHOOK_PATH=self.options.webhook_path)
        if not env.get("GREENQ_TOKENS") and env.get("GREENQ_ALLOW_UNAUTHENTICATED", "").lower() != "true":
            self.token_file = data_dir / "token"
            if not self.token_file.exists():
                self.token_file.touch(mode=0o600)
                self.token_file.write_text(secrets.token_urlsafe(32))
            env["GREENQ_TOKENS"] = f"local={self.token_file.read_text().strip()}"
        return env

    def _start_ingress(self, index: int, env: dict[str, str], data_dir: Path) -> None:
        port = self.options.port + index
        metrics_dir = data_dir / f"ingress-{index}-metrics"
        command = [
            sys.executable,
            "-m",
            "greenq",
            "ingress",
            "--port",
            str(port),
            "--metrics-dir",
            str(metrics_dir),
        ]
        process = subprocess.Popen(command, env=env, start_new_session=True)
        self.children.append(Child("ingress", process, f"http://127.0.0.1:{port}"))
        wait_for_port("127.0.0.1", port, 30, process)

    def _start_worker(self, index: int, env: dict[str, str]) -> None:
        port = free_port()
        command = [
            sys.executable,
            "-m",
            "greenq",
            "worker",
            "--metrics-port",
            str(port),
            "--name",
            f"local-{index}",
        ]
        process = subprocess.Popen(command, env=env, start_new_session=True)
        self.children.append(Child("worker", process, f"http://127.0.0.1:{port}/metrics"))
        wait_for_port("127.0.0.1", port, 30, process)


def run_up(options: UpOptions, out: TextIO = sys.stdout) -> int:
    """Start, print where everything is, wait for Ctrl-C/SIGTERM, stop. Returns the exit code."""
    stop_event = threading.Event()

    def request_stop(_signum: int, _frame: FrameType | None) -> None:
        stop_event.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    pipeline = LocalPipeline(options, out)
    try:
        pipeline.start()
        out.write(pipeline.summary() + "\n")
        out.flush()
        return pipeline.wait(stop_event)
    finally:
        out.write("stopping...\n")
        pipeline.stop()
        out.write("stopped\n")
