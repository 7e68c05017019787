"""Which dead letters an operator means: outcome, typeWebhook, idInstance and a time range.

The time range maps onto stream ids (millisecond timestamps), so Redis does the range part and only the
entries inside it are read; the other criteria are checked on each entry (:func:`select`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from greenq.core.deadletters.store import DeadLetter, DeadLetterStore

_RELATIVE: Final = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNIT_SECONDS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


class TimeSpecError(ValueError):
    """A ``--since``/``--until`` value that is neither ISO-8601 nor relative like ``90m``."""


def parse_when(text: str, now: datetime | None = None) -> datetime:
    """``2024-05-01T12:00:00Z`` (naive = UTC) or ``30s``/``15m``/``2h``/``7d``/``1w`` before ``now``."""
    now = now if now is not None else datetime.now(UTC)
    relative = _RELATIVE.match(text)
    if relative:
        amount, unit = relative.groups()
        return now - timedelta(seconds=float(amount) * _UNIT_SECONDS[unit])
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise TimeSpecError(
            f"{text!r} is not a time: use ISO-8601 (2024-05-01T12:00:00Z) or an age like 30m, 2h, 7d"
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def stream_millis(moment: datetime) -> int:
    """The stream-id timestamp (ms since the epoch) of ``moment``."""
    return max(0, int(moment.timestamp() * 1000))


@dataclass(frozen=True)
class DeadLetterFilter:
    """Criteria that all have to hold; an empty filter selects nothing by itself (see ``is_empty``)."""

    outcomes: frozenset[str] = frozenset()
    type_webhook: str | None = None
    id_instance: int | None = None
    since: datetime | None = None
    until: datetime | None = None

    @property
    def is_empty(self) -> bool:
        """True when no criterion is set (commands that delete or replay then demand ``--all``)."""
        return not (
            self.outcomes or self.type_webhook or self.id_instance is not None or self.since or self.until
        )

    def id_range(self) -> tuple[str, str]:
        """XRANGE bounds: a bare ms start means ``ms-0``, a bare ms end means the whole millisecond."""
        low = "-" if self.since is None else str(stream_millis(self.since))
        high = "+" if self.until is None else str(stream_millis(self.until))
        return low, high

    def matches(self, letter: DeadLetter) -> bool:
        """The non-time criteria (the time range is applied by :meth:`id_range`)."""
        if self.outcomes and letter.outcome.value not in self.outcomes:
            return False
        if self.type_webhook is not None and letter.type_webhook != self.type_webhook:
            return False
        return self.id_instance is None or letter.id_instance == self.id_instance

    def describe(self) -> str:
        """The criteria as the operator would type them, for prompts and summaries."""
        parts = [f"outcome={value}" for value in sorted(self.outcomes)]
        if self.type_webhook is not None:
            parts.append(f"type={self.type_webhook}")
        if self.id_instance is not None:
            parts.append(f"instance={self.id_instance}")
        if self.since is not None:
            parts.append(f"since={self.since.isoformat(timespec='seconds')}")
        if self.until is not None:
            parts.append(f"until={self.until.isoformat(timespec='seconds')}")
        return " ".join(parts) or "all"


def select(
    store: DeadLetterStore, criteria: DeadLetterFilter, limit: int | None = None
) -> Iterator[DeadLetter]:
    """Matching entries, oldest first, at most ``limit`` of them."""
    if limit is not None and limit <= 0:
        return
    low, high = criteria.id_range()
    found = 0
    for letter in store.scan(low, high):
        if criteria.matches(letter):
            yield letter
            found += 1
            if limit is not None and found >= limit:
                return
