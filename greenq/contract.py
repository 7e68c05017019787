"""The job contract between the ingress (or poller) and the workers.

One RQ job carries a *batch*: a list of envelopes, each wrapping one notification exactly as it arrived.
Jobs are serialized with RQ's JSON serializer (no pickle), so a job in Redis is plain, inspectable JSON.
The raw body is kept as text, not re-encoded, so payload quirks (a duplicated key, key order, number
spelling) reach the worker untouched. Bodies are valid UTF-8 by construction: the ingress only accepts
bodies that parse as JSON, and JSON text is UTF-8.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Final, Literal

from rq.serializers import JSONSerializer

from greenq import keys

#: Bumped when the envelope changes shape; workers refuse versions they do not know.
ENVELOPE_VERSION: Final = 1

Source = Literal["webhook", "poll", "replay"]

#: Serializer both sides hand to RQ (``Queue(serializer=...)``, ``Worker(serializer=...)``).
SERIALIZER: Final = JSONSerializer

QUEUE_NAME: Final = keys.QUEUE_NAME
JOB_FUNCTION: Final = keys.JOB_FUNCTION

#: Seconds one batch job may run before RQ gives up on it.
DEFAULT_JOB_TIMEOUT: Final = 300

#: Whole-job re-runs when a batch could not commit (Redis failed) or its worker died; each notification's own
#: handler retries are separate (settings). Intervals in seconds; they need a worker running RQ's scheduler.
JOB_RETRIES: Final = 5
JOB_RETRY_INTERVALS: Final = (0, 5, 15, 60, 300)  # the first re-run needs no scheduler: it is queued at once

#: Seconds RQ keeps a failed job (a crash, not a handler error: those go to the dead letter).
FAILURE_TTL: Final = 7 * 24 * 3600


class EnvelopeError(ValueError):
    """A job argument is not an envelope this version understands (a permanent error)."""


@dataclass(frozen=True, slots=True)
class Envelope:
    """One notification in transit, with the facts the ingress knew when it accepted it."""

    body: str
    source: Source
    received_at: float = field(default_factory=time.time)
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    token_id: str | None = None
    attempt: int = 1
    #: On a retry, the handlers still owed this notification (the ones that succeeded are not re-run).
    pending_handlers: tuple[str, ...] | None = None
    #: On a replay, the dead-letter entry it came from: each replay is its own unit of work (exactly-once).
    replay_of: str | None = None
    version: int = ENVELOPE_VERSION

    def to_wire(self) -> dict[str, Any]:
        """JSON-safe mapping stored in the RQ job."""
        wire = asdict(self)
        wire["pending_handlers"] = list(self.pending_handlers) if self.pending_handlers is not None else None
        return wire

    @classmethod
    def from_wire(cls, wire: object) -> Envelope:
        """Rebuild an envelope from its job form, refusing anything malformed with a clear reason."""
        if not isinstance(wire, dict):
            raise EnvelopeError(f"envelope must be an object, got {type(wire).__name__}")
        version = wire.get("version")
        if version != ENVELOPE_VERSION:
            raise EnvelopeError(f"unsupported envelope version {version!r}")
        body, source = wire.get("body"), wire.get("source")
        if not isinstance(body, str):
            raise EnvelopeError(f"envelope body must be text, got {type(body).__name__}")
        if source not in ("webhook", "poll", "replay"):
            raise EnvelopeError(f"unknown envelope source {source!r}")
        pending = wire.get("pending_handlers")
        return cls(
            body=body,
            source=source,
            received_at=float(wire.get("received_at", 0.0)),
            request_id=str(wire.get("request_id", "")),
            token_id=None if wire.get("token_id") is None else str(wire["token_id"]),
            attempt=int(wire.get("attempt", 1)),
            pending_handlers=None if pending is None else tuple(str(name) for name in pending),
            replay_of=None if wire.get("replay_of") is None else str(wire["replay_of"]),
        )

    def next_attempt(self, pending_handlers: tuple[str, ...]) -> Envelope:
        """The envelope for a retry that re-runs only ``pending_handlers``."""
        return replace(self, attempt=self.attempt + 1, pending_handlers=pending_handlers)


def batch_to_wire(envelopes: list[Envelope]) -> list[dict[str, Any]]:
    """The single positional argument of a ``process_batch`` job."""
    return [envelope.to_wire() for envelope in envelopes]
