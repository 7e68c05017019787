"""A real ``greenq ingress`` process for tests that need the server's own HTTP parsing."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from greenq.local.procs import free_port, stop_process, wait_for_port
from tests.support.processes import REPO


@contextmanager
def running_ingress(env: dict[str, str], log: Path) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """Start ``greenq ingress`` on a free port (output to ``log``), yield (port, process), stop it."""
    port = free_port()
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "greenq", "ingress", "--port", str(port)],
            env=env,
            cwd=REPO,
            stdout=sink,
            stderr=sink,
        )
    try:
        wait_for_port("127.0.0.1", port, 30, process)
        yield port, process
    finally:
        stop_process(process)
