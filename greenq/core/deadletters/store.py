"""The dead-letter store: a Redis Stream of notifications that need a human.

Entries keep the full original body, the outcome (invalid, failed, unknown_type, too_large), readable
reasons and the times, so an operator can inspect and replay them. This module is the only code that knows
the stream's layout (one entry's fields, how they are encoded, how the stream is walked); everything else
asks :class:`DeadLetterStore`. Entries are removed only by a replay, a purge or the retention trim.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import cast

import orjson
from redis import Redis
from redis.asyncio.client import Pipeline as AsyncPipeline
from redis.client import Pipeline

from greenq.core import keys
from greenq.core.contract import Envelope
from greenq.core.outcomes import Outcome

#: Entries read per XRANGE call when walking the stream, so a large backlog never arrives in one reply.
PAGE_SIZE = 500

#: Ids per XDEL call when removing a selection.
DELETE_CHUNK = 500

RawEntry = tuple[bytes, dict[bytes, bytes]]


class UnreadableDeadLetter(ValueError):
    """A stream entry that is not a dead letter this version can read (it can still be removed by id)."""

    def __init__(self, entry_id: str, problem: str) -> None:
        super().__init__(f"dead letter {entry_id} is unreadable: {problem}")
        self.entry_id = entry_id


@dataclass(frozen=True)
class DeadLetterSummary:
    """Stream size and the per-outcome split (``complete`` is False when the count was capped)."""

    total: int
    by_outcome: dict[str, int]
    complete: bool


@dataclass(frozen=True)
class DeadLetter:
    """One stored failure."""

    outcome: Outcome
    reasons: tuple[str, ...]
    envelope: Envelope
    type_webhook: str | None = None
    id_instance: int | None = None
    failed_at: float = field(default_factory=time.time)
    entry_id: str | None = None
    #: ``unsent`` letters only: the outbox partition the entry came from (a replay puts it back there).
    partition: int | None = None

    def to_fields(self) -> dict[str, str]:
        values = {
            "outcome": self.outcome.value,
            "reasons": orjson.dumps(list(self.reasons)).decode(),
            "type_webhook": self.type_webhook or "",
            "id_instance": "" if self.id_instance is None else str(self.id_instance),
            "failed_at": repr(self.failed_at),
            "envelope": self.envelope.encode().decode(),
        }
        if self.partition is not None:
            values["partition"] = str(self.partition)
        return values

    @classmethod
    def from_fields(cls, entry_id: str, values: dict[str, str]) -> DeadLetter:
        return cls(
            outcome=Outcome(values["outcome"]),
            reasons=tuple(orjson.loads(values["reasons"])),
            envelope=Envelope.decode(values["envelope"]),
            type_webhook=values.get("type_webhook") or None,
            id_instance=int(values["id_instance"]) if values.get("id_instance") else None,
            failed_at=float(values["failed_at"]),
            entry_id=entry_id,
            partition=int(values["partition"]) if values.get("partition") else None,
        )


class DeadLetterStore:
    """Append, read and remove dead letters."""

    def __init__(self, connection: Redis, stream: str = keys.DEAD_LETTER_STREAM) -> None:
        self._redis = connection
        self._stream = stream

    def add(self, letter: DeadLetter) -> str:
        entry_id = self._redis.xadd(self._stream, letter.to_fields())  # type: ignore[arg-type]
        return _text(entry_id)

    def add_in(self, pipeline: Pipeline, letter: DeadLetter) -> None:
        """Queue the append on ``pipeline``, so it commits atomically with the rest of a batch."""
        add_in_pipeline(pipeline, letter, self._stream)

    def size(self) -> int:
        return int(self._redis.xlen(self._stream))

    def entries(self, count: int | None = None) -> list[DeadLetter]:
        """Oldest first."""
        return self._read("-", "+", count)

    def get(self, entry_id: str) -> DeadLetter | None:
        found = self._read(entry_id, entry_id, 1)
        return found[0] if found else None

    def remove(self, *entry_ids: str) -> int:
        """Delete exactly these entries, a chunk of ids per call; returns how many existed."""
        removed = 0
        for start in range(0, len(entry_ids), DELETE_CHUNK):
            removed += int(self._redis.xdel(self._stream, *entry_ids[start : start + DELETE_CHUNK]))
        return removed

    def _read(self, low: str, high: str, count: int | None) -> list[DeadLetter]:
        raw = cast(list[tuple[bytes, dict[bytes, bytes]]], self._redis.xrange(self._stream, low, high, count))
        return [DeadLetter.from_fields(_text(entry_id), _decode(values)) for entry_id, values in raw]

    # Operator views (greenq dlq / greenq status): paged, bounded walks over the stream.

    def last_id(self) -> str | None:
        """Id of the newest entry, or None when the stream is empty."""
        newest = cast(list[RawEntry], self._redis.xrevrange(self._stream, "+", "-", 1))
        return _text(newest[0][0]) if newest else None

    def scan(self, low: str = "-", high: str = "+", page_size: int = PAGE_SIZE) -> Iterator[DeadLetter]:
        """Entries with ``low`` <= id <= ``high``, oldest first, read a page at a time.

        ``high="+"`` is pinned to the newest id when the walk starts, so entries added meanwhile (e.g. by a
        replay that failed again) are not visited and the walk always ends. Raises
        :class:`UnreadableDeadLetter` on an entry this version cannot read.
        """
        for entry_id, values in self._scan_raw(low, high, page_size):
            yield _letter(entry_id, values)

    def outcome_counts(self, max_entries: int) -> tuple[dict[str, int], int]:
        """Entries per outcome among the oldest ``max_entries``, and how many were read."""
        counts: Counter[str] = Counter()
        read = 0
        for _, values in self._scan_raw("-", "+", PAGE_SIZE):
            if read >= max_entries:
                break
            counts[_text(values.get(b"outcome", b"?"))] += 1
            read += 1
        return dict(counts), read

    def summary(self, max_entries: int) -> DeadLetterSummary:
        """The size, and the split by outcome of the oldest ``max_entries`` (reads only)."""
        total = self.size()
        by_outcome, read = self.outcome_counts(max_entries)
        return DeadLetterSummary(total=total, by_outcome=by_outcome, complete=read >= total)

    def trim_older_than(self, cutoff_ms: int) -> int:
        """Remove every entry whose id (its ms timestamp) is below ``cutoff_ms``; returns how many."""
        return int(self._redis.xtrim(self._stream, minid=f"{cutoff_ms}-0", approximate=False))

    def remove_through(self, entry_id: str) -> int:
        """Remove every entry up to and including ``entry_id``; returns how many."""
        millis, _, sequence = entry_id.partition("-")
        minid = f"{millis}-{int(sequence or 0) + 1}"
        return int(self._redis.xtrim(self._stream, minid=minid, approximate=False))

    def remove_in(self, pipeline: Pipeline, *entry_ids: str) -> None:
        """Queue the removal on ``pipeline`` (e.g. a MULTI that also enqueues the replay job)."""
        if entry_ids:
            pipeline.xdel(self._stream, *entry_ids)

    def _scan_raw(self, low: str, high: str, page_size: int) -> Iterator[tuple[str, dict[bytes, bytes]]]:
        if high == "+":
            newest = self.last_id()
            if newest is None:
                return
            high = newest
        start = low
        while True:
            page = cast(list[RawEntry], self._redis.xrange(self._stream, start, high, page_size))
            for entry_id, values in page:
                yield _text(entry_id), values
            if len(page) < page_size:
                return
            start = f"({_text(page[-1][0])}"  # exclusive: every page moves strictly forward


def add_in_pipeline(
    pipeline: Pipeline | AsyncPipeline, letter: DeadLetter, stream: str = keys.DEAD_LETTER_STREAM
) -> None:
    """Queue the append of ``letter`` on any pipeline (a batch's MULTI, or the sender's asyncio one)."""
    pipeline.xadd(stream, letter.to_fields())  # type: ignore[arg-type]


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _decode(values: dict[bytes, bytes]) -> dict[str, str]:
    return {_text(key): _text(value) for key, value in values.items()}


def _letter(entry_id: str, values: dict[bytes, bytes]) -> DeadLetter:
    try:
        return DeadLetter.from_fields(entry_id, _decode(values))
    except (KeyError, ValueError, TypeError) as error:  # EnvelopeError and JSON errors are ValueErrors
        raise UnreadableDeadLetter(entry_id, f"{type(error).__name__}: {error}") from error
