"""The dead-letter store: a Redis Stream of notifications that need a human.

Entries keep the full original body, the outcome (invalid, failed, unknown_type), readable reasons and the
times, so an operator can inspect and replay them. Nothing is trimmed automatically.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import cast

import orjson
from redis import Redis

from greenq import keys
from greenq.contract import Envelope
from workers.outcomes import Outcome


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

    def to_fields(self) -> dict[str, str]:
        return {
            "outcome": self.outcome.value,
            "reasons": orjson.dumps(list(self.reasons)).decode(),
            "type_webhook": self.type_webhook or "",
            "id_instance": "" if self.id_instance is None else str(self.id_instance),
            "failed_at": repr(self.failed_at),
            "envelope": orjson.dumps(self.envelope.to_wire()).decode(),
        }

    @classmethod
    def from_fields(cls, entry_id: str, values: dict[str, str]) -> DeadLetter:
        return cls(
            outcome=Outcome(values["outcome"]),
            reasons=tuple(orjson.loads(values["reasons"])),
            envelope=Envelope.from_wire(orjson.loads(values["envelope"])),
            type_webhook=values.get("type_webhook") or None,
            id_instance=int(values["id_instance"]) if values.get("id_instance") else None,
            failed_at=float(values["failed_at"]),
            entry_id=entry_id,
        )


class DeadLetterStore:
    """Append, read and remove dead letters."""

    def __init__(self, connection: Redis, stream: str = keys.DEAD_LETTER_STREAM) -> None:
        self._redis = connection
        self._stream = stream

    def add(self, letter: DeadLetter) -> str:
        entry_id = self._redis.xadd(self._stream, letter.to_fields())  # type: ignore[arg-type]
        return _text(entry_id)

    def size(self) -> int:
        return int(self._redis.xlen(self._stream))

    def entries(self, count: int | None = None) -> list[DeadLetter]:
        """Oldest first."""
        return self._read("-", "+", count)

    def get(self, entry_id: str) -> DeadLetter | None:
        found = self._read(entry_id, entry_id, 1)
        return found[0] if found else None

    def remove(self, *entry_ids: str) -> int:
        return int(self._redis.xdel(self._stream, *entry_ids)) if entry_ids else 0

    def _read(self, low: str, high: str, count: int | None) -> list[DeadLetter]:
        raw = cast(list[tuple[bytes, dict[bytes, bytes]]], self._redis.xrange(self._stream, low, high, count))
        return [DeadLetter.from_fields(_text(entry_id), _decode(values)) for entry_id, values in raw]


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _decode(values: dict[bytes, bytes]) -> dict[str, str]:
    return {_text(key): _text(value) for key, value in values.items()}
