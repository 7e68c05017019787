"""Real greenq processes for tests: their environment, starting and stopping them (own process groups,
bounded waits), and waiting for what they do.

Every test that starts ``greenq`` as a process builds its environment here, so none of them inherits the
machine's ``GREENQ_*`` settings or a stray ``.env``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from greenq.local.redis_server import LocalRedis
from tests.conftest import TOKEN

REPO = Path(__file__).resolve().parents[2]
#: The command line of ``greenq`` as a process.
GREENQ = [sys.executable, "-m", "greenq"]


def wait_until(condition: Callable[[], bool], timeout: float, what: str, interval: float = 0.02) -> None:
    """Return as soon as ``condition()`` holds; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def poll(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Wait until ``condition()`` holds, failing with ``what`` after ``timeout`` seconds."""
    wait_until(condition, timeout, what, interval=0.05)


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without greenq/prometheus settings, plus ``extra``."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("GREENQ_", "PROMETHEUS_"))}
    return {**base, **extra}


def subprocess_env(redis_server: LocalRedis, **extra: str) -> dict[str, str]:
    """A clean environment pointed at the test's ``redis_server``, plus ``extra``."""
    return clean_env(**{"GREENQ_REDIS_URL": redis_server.url, **extra})


def env_for(redis_server: LocalRedis, **extra: str) -> dict[str, str]:
    """:func:`subprocess_env` with the test token accepted (``GREENQ_TOKENS``) unless ``extra`` sets it."""
    return subprocess_env(redis_server, **{"GREENQ_TOKENS": f"tests={TOKEN}", **extra})


def run_greenq(
    args: Sequence[str], env: dict[str, str], cwd: Path = REPO, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """``greenq <args>`` run to its end with stdin closed (no terminal), its output captured as UTF-8."""
    return subprocess.run(
        [*GREENQ, *args],
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        encoding="utf-8",
        errors="replace",
        timeout=timeout,
        check=False,
    )


def start(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    """``python -m greenq <args>`` in its own process group (a kill takes its children too)."""
    return subprocess.Popen([*GREENQ, *args], env=env, cwd=REPO, start_new_session=True)


def kill_group(process: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
    process.wait(30)
