"""A real ``greenq ingress`` (uvicorn + httptools) for the hostile tests that need the server's own HTTP
parsing: its address, process, memory and log (a pytest plugin fixture, loaded by tests/conftest.py)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pytest

from greenq.local.redis_server import LocalRedis
from tests.support.ingress import running_ingress
from tests.support.processes import env_for

REAL_INGRESS_CAP: Final = 4 * 1024 * 1024


@dataclass
class RealIngress:
    url: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS")

    def log_size(self) -> int:
        return self.log.stat().st_size

    def log_since(self, offset: int) -> str:
        with self.log.open("rb") as handle:
            handle.seek(offset)
            return handle.read().decode(errors="replace")


@pytest.fixture(scope="module")
def real_ingress(redis_server: LocalRedis, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealIngress]:
    # the endless-body test bounds memory well below the cap
    env = env_for(redis_server, GREENQ_BODY_CAP_BYTES=str(REAL_INGRESS_CAP))
    log = tmp_path_factory.mktemp("real-ingress") / "output.log"
    with running_ingress(env, log) as (port, process):
        yield RealIngress(f"http://127.0.0.1:{port}", port, process, log)


def wait_for_log(real_ingress: RealIngress, offset: int, markers: tuple[str, ...]) -> str:
    """The ingress's output since ``offset`` once one of ``markers`` shows up (10 s at most)."""
    deadline = time.monotonic() + 10
    logged = real_ingress.log_since(offset)
    while not any(marker in logged for marker in markers) and time.monotonic() < deadline:
        time.sleep(0.05)
        logged = real_ingress.log_since(offset)
    return logged
