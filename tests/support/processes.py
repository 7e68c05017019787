"""Starting and stopping real greenq processes for fault tests (own process groups, bounded waits)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def poll(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Wait until ``condition()`` holds, failing with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without greenq/prometheus settings, plus ``extra``."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("GREENQ_", "PROMETHEUS_"))}
    return {**base, **extra}


def start(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    """``python -m greenq <args>`` in its own process group (a kill takes its children too)."""
    return subprocess.Popen(
        [sys.executable, "-m", "greenq", *args], env=env, cwd=REPO, start_new_session=True
    )


def kill_group(process: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
    process.wait(30)
