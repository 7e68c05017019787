"""Real ``greenq worker`` processes that SIGKILL themselves at a checkpoint, and the worker that rescues
their job (``tests.support.crash`` places the kill; the restarted worker recovers the abandoned job)."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from greenq.local.redis_server import LocalRedis
from tests.support.crash import CRASH_AT_ENV, CRASH_ONCE_ENV
from tests.support.processes import clean_env, kill_group, start


def worker_env(redis_server: LocalRedis, router: str, crash_at: str, marker: Path) -> dict[str, str]:
    """A worker environment that recovers abandoned jobs within seconds and crashes at ``crash_at``."""
    return clean_env(
        GREENQ_REDIS_URL=redis_server.url,
        GREENQ_ROUTER=router,
        GREENQ_ABANDONED_JOB_SECONDS="5",
        GREENQ_MAINTENANCE_INTERVAL_SECONDS="1",
        GREENQ_METRICS_PORT="0",
        GREENQ_RETRY_BACKOFF="0",
        **{CRASH_AT_ENV: crash_at, CRASH_ONCE_ENV: str(marker)},
    )


@contextmanager
def doomed_then_rescued(env: dict[str, str], marker: Path, point: str) -> Iterator[None]:
    """Run a worker until it kills itself at ``point``, then a rescuer (stopped when the block ends)."""
    started: list[subprocess.Popen[bytes]] = []
    try:
        doomed = start(["worker", "--name", "doomed"], env)
        started.append(doomed)
        assert doomed.wait(60) == -signal.SIGKILL
        assert marker.read_text() == point
        started.append(start(["worker", "--name", "rescuer"], env))
        yield
    finally:
        for process in started:
            kill_group(process, signal.SIGTERM)
