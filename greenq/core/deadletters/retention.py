"""Dead-letter retention: entries older than ``GREENQ_DEAD_LETTER_RETENTION_DAYS`` are removed.

The stream id of an entry is the millisecond it was written, so the trim is one XTRIM MINID. Workers run it
at most hourly from their maintenance pass (:class:`RetentionSchedule`); ``greenq dlq trim`` runs it once.
Every run logs how many entries it removed.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Final

from redis import Redis

from greenq.core.deadletters.store import DeadLetterStore
from greenq.core.logs import fields

log = logging.getLogger("greenq.dlq")

SECONDS_PER_DAY: Final = 86400

#: How often a worker applies the retention (each run logs how many entries it removed).
TRIM_INTERVAL_SECONDS: Final = 3600


def trim_dead_letters(connection: Redis, retention_days: int, now: float | None = None) -> int:
    """Remove entries older than ``retention_days`` (0 keeps them forever); logs and returns the count."""
    store = DeadLetterStore(connection)
    if retention_days <= 0:
        log.info("dead letters kept forever (retention 0); nothing trimmed", extra=fields(removed=0))
        return 0
    cutoff = (time.time() if now is None else now) - retention_days * SECONDS_PER_DAY
    removed = store.trim_older_than(int(cutoff * 1000))
    log.info(
        "dead letters trimmed",
        extra=fields(
            removed=removed,
            retention_days=retention_days,
            cutoff=datetime.fromtimestamp(cutoff, UTC).isoformat(timespec="seconds"),
            remaining=store.size(),
        ),
    )
    return removed


class RetentionSchedule:
    """When a long-running worker trims: the first time it is asked, then once per interval."""

    def __init__(self, retention_days: int, interval_seconds: float = TRIM_INTERVAL_SECONDS) -> None:
        self.retention_days = retention_days
        self.interval_seconds = interval_seconds
        self._last_run: float | None = None

    def run_if_due(self, connection: Redis) -> int | None:
        """Trim when retention is on and the interval has passed; the count removed, or None if not due."""
        if self.retention_days <= 0:
            return None
        now = time.monotonic()
        if self._last_run is not None and now - self._last_run < self.interval_seconds:
            return None
        self._last_run = now
        return trim_dead_letters(connection, self.retention_days)
