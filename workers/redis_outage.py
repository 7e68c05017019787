"""A worker's wait for a Redis that stopped taking writes: capped backoff and a bounded number of log lines.

Redis refuses writes for two different reasons: it is unreachable, or it is full (``maxmemory`` with
``noeviction`` answers ``OOM`` to every write while PING, reads and deletes still work). A PING therefore
says nothing about whether RQ's work loop can run; a real write probe does. While writes fail the worker
sleeps with capped exponential backoff between probes and logs one line when the outage starts, a
reminder after ``summary_every`` seconds and then at doubling intervals (at most hourly) while it lasts,
and one line when writes succeed again. A loop that
fails again soon after a recovery (memory hovering at the limit) continues the same outage: the backoff
keeps growing and no new "lost" line is written.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import OutOfMemoryError, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from greenq.core import keys
from greenq.core.logs import fields

log = logging.getLogger("greenq.worker")


def outage_kind(error: BaseException | None) -> str:
    """``full`` (Redis at maxmemory), ``unreachable`` (connection, timeouts), ``stopped`` (RQ's loop ended
    on an error it logged itself) or ``error``."""
    if error is None:
        return "stopped"
    if isinstance(error, RedisConnectionError | RedisTimeoutError):
        return "unreachable"
    if isinstance(error, OutOfMemoryError) or "maxmemory" in str(error):
        return "full"
    return "error"


def probe_write(redis: Redis) -> BaseException | None:
    """None when Redis accepts a write right now, else the error it answered with."""
    try:
        redis.set(keys.WRITE_PROBE, "1", px=10_000)
    except RedisError as error:
        return error
    return None


@dataclass
class RedisOutage:
    """Tracks one worker's outages; ``failed`` when the work loop hit Redis, ``wait`` until writes work."""

    worker: str
    base: float = 0.5
    cap: float = 10.0
    summary_every: float = 60.0
    summary_cap: float = 3600.0
    #: A failure this soon after a recovery belongs to the same outage.
    settle: float = 60.0
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    _delay: float = field(default=0.0, init=False)
    _since: float | None = field(default=None, init=False)
    _recovered_at: float | None = field(default=None, init=False)
    _failures: int = field(default=0, init=False)
    _last_line: float = field(default=0.0, init=False)
    _gap: float = field(default=0.0, init=False)
    _recovery_logged: bool = field(default=False, init=False)

    def failed(self, error: BaseException | None) -> None:
        """The work loop stopped (on ``error``, or None when RQ handled it): start or continue an outage."""
        now = self.clock()
        self._failures += 1
        if self._recovered_at is not None and now - self._recovered_at < self.settle:
            self._recovered_at = None  # flapping: the same outage goes on, silently
            return
        self._since, self._recovered_at, self._failures = now, None, 1
        self._delay, self._last_line, self._recovery_logged = self.base, now, False
        self._gap = self.summary_every
        message = "worker lost Redis" if error is not None else "worker's RQ loop ended (RQ logged why)"
        error_name = type(error).__name__ if error is not None else None
        log.error(message, extra=fields(worker=self.worker, reason=outage_kind(error), error=error_name))

    def wait(self, redis: Redis) -> None:
        """Block until a write succeeds, backing off between probes; logs a bounded number of lines."""
        while True:
            self.sleep(self._delay)
            self._delay = min(self.cap, max(self.base, self._delay * 2))
            problem = probe_write(redis)
            if problem is None:
                break
            self._failures += 1
            if self.clock() - self._last_line >= self._gap:
                self._gap = min(self.summary_cap, self._gap * 2)
                self._line(logging.WARNING, "Redis still refuses writes", reason=outage_kind(problem))
        self._recovered_at = self.clock()
        if not self._recovery_logged or self._recovered_at - self._last_line >= self.summary_every:
            self._recovery_logged = True
            self._line(logging.INFO, "Redis accepts writes again; restarting the work loop")

    def _line(self, level: int, message: str, **extra: object) -> None:
        now = self.clock()
        since = self._since if self._since is not None else now
        self._last_line = now
        log.log(
            level,
            message,
            extra=fields(
                worker=self.worker, failures=self._failures, outage_seconds=round(now - since, 1), **extra
            ),
        )
