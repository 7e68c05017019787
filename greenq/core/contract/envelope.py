"""The envelope: one notification in transit, and its wire format (every version) in one place.

An envelope travels as its *wire mapping* (:meth:`Envelope.to_wire` / :meth:`Envelope.from_wire`): a list
of them is the argument of a ``process_batch`` job, serialized with the rest of the job by RQ's JSON
serializer (no pickle), so a job in Redis is plain, inspectable JSON. Where an envelope is stored on its own
(an ordered-mode partition stream or parked list, a dead letter) it is that mapping as JSON bytes
(:meth:`Envelope.encode` / :meth:`Envelope.decode`).

The raw body is kept exactly as received, so payload quirks (a duplicated key, key order, number spelling)
reach the worker untouched: as text when it is valid UTF-8 (every real notification), as base64 otherwise,
because the ingress stores whatever an authenticated sender posts and the worker dead-letters what it
cannot read (a non-200 would stall the GREEN API instance; see the README's "What greenq answers GREEN API").

Rolling upgrades: version-1 envelopes (text bodies, the only kind older releases wrote) stay version 1 and
are read unchanged. Only a base64 body makes an envelope version 2, so an older worker keeps it whole as a
malformed envelope in the dead letter instead of misreading the base64 text as the notification.
"""

from __future__ import annotations

import base64
import binascii
import time
import uuid
from dataclasses import dataclass, field, replace
from typing import Any, Final, Literal

import orjson

#: Bumped when the envelope changes shape; workers refuse versions they do not know.
ENVELOPE_VERSION: Final = 1
#: Version of an envelope whose body is base64 (not UTF-8): older workers refuse it, keeping it whole.
BINARY_ENVELOPE_VERSION: Final = 2
READABLE_VERSIONS: Final = frozenset({ENVELOPE_VERSION, BINARY_ENVELOPE_VERSION})

BodyEncoding = Literal["text", "base64"]

#: Where a notification came from; ``reconcile``: rebuilt from GREEN API's message journal.
#: ``outbox``: not a notification but an outbox entry the sender dead-lettered (deadletters.unsent).
Source = Literal["webhook", "poll", "replay", "reconcile", "outbox"]

#: Field of an ordered-mode partition stream entry that holds the encoded envelope.
ENVELOPE_FIELD: Final = b"e"


class EnvelopeError(ValueError):
    """A job argument is not an envelope this version understands (a permanent error)."""


@dataclass(frozen=True, slots=True)
class Envelope:
    """One notification in transit, with the facts the ingress knew when it accepted it.

    ``body`` is the text received, or its base64 when ``body_encoding`` is ``"base64"``; ``raw_body`` gives
    the exact bytes either way. ``over_limit`` is the processing limit (bytes) the body exceeded at the
    ingress: such a body is stored whole but dead-lettered ``too_large`` without being parsed.
    """

    body: str
    source: Source
    received_at: float = field(default_factory=time.time)
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    token_id: str | None = None
    attempt: int = 1
    #: On a retry, the handlers still owed this notification (the ones that succeeded are not re-run).
    pending_handlers: tuple[str, ...] | None = None
    body_encoding: BodyEncoding = "text"
    over_limit: int | None = None
    #: On a replay, the dead-letter entry it came from: each replay is its own unit of work (exactly-once).
    replay_of: str | None = None

    @classmethod
    def of_bytes(cls, raw: bytes, source: Source, **facts: Any) -> Envelope:
        """An envelope holding ``raw`` losslessly: as text when it is UTF-8, else as base64."""
        try:
            return cls(body=raw.decode("utf-8"), source=source, **facts)
        except UnicodeDecodeError:
            encoded = base64.b64encode(raw).decode("ascii")
            return cls(body=encoded, source=source, body_encoding="base64", **facts)

    @property
    def raw_body(self) -> bytes:
        """The body's exact bytes, as received."""
        if self.body_encoding == "base64":
            return base64.b64decode(self.body)
        return self.body.encode("utf-8", "surrogatepass")

    @property
    def version(self) -> int:
        """The oldest envelope version that can carry this envelope (see the module docstring)."""
        return BINARY_ENVELOPE_VERSION if self.body_encoding == "base64" else ENVELOPE_VERSION

    def to_wire(self) -> dict[str, Any]:
        """JSON-safe mapping stored in the RQ job; fields at their defaults are left out (older readers)."""
        # Spelled out rather than dataclasses.asdict (a deep copy, ~10 µs): this runs once per notification.
        wire: dict[str, Any] = {
            "body": self.body,
            "source": self.source,
            "received_at": self.received_at,
            "request_id": self.request_id,
            "token_id": self.token_id,
            "attempt": self.attempt,
            "pending_handlers": list(self.pending_handlers) if self.pending_handlers is not None else None,
        }
        if self.body_encoding != "text":
            wire["body_encoding"] = self.body_encoding
        if self.over_limit is not None:
            wire["over_limit"] = self.over_limit
        if self.replay_of is not None:
            wire["replay_of"] = self.replay_of
        wire["version"] = self.version
        return wire

    @classmethod
    def from_wire(cls, wire: object) -> Envelope:
        """Rebuild an envelope from its job form, refusing anything malformed with a clear reason."""
        if not isinstance(wire, dict):
            raise EnvelopeError(f"envelope must be an object, got {type(wire).__name__}")
        version = wire.get("version")
        if version not in READABLE_VERSIONS:
            raise EnvelopeError(f"unsupported envelope version {version!r}")
        body, source = wire.get("body"), wire.get("source")
        if not isinstance(body, str):
            raise EnvelopeError(f"envelope body must be text, got {type(body).__name__}")
        if source not in ("webhook", "poll", "replay", "reconcile", "outbox"):
            raise EnvelopeError(f"unknown envelope source {source!r}")
        pending, over_limit = wire.get("pending_handlers"), wire.get("over_limit")
        return cls(
            body=body,
            source=source,
            received_at=float(wire.get("received_at", 0.0)),
            request_id=str(wire.get("request_id", "")),
            token_id=None if wire.get("token_id") is None else str(wire["token_id"]),
            attempt=int(wire.get("attempt", 1)),
            pending_handlers=None if pending is None else tuple(str(name) for name in pending),
            body_encoding=_body_encoding(wire.get("body_encoding", "text"), body),
            over_limit=None if over_limit is None else int(over_limit),
            replay_of=None if wire.get("replay_of") is None else str(wire["replay_of"]),
        )

    def encode(self) -> bytes:
        """The wire mapping as JSON bytes: the form an envelope is stored in on its own."""
        return orjson.dumps(self.to_wire())

    @classmethod
    def decode(cls, encoded: bytes | str) -> Envelope:
        """The envelope :meth:`encode` wrote; anything else raises :class:`EnvelopeError`."""
        return cls.from_wire(decode_wire(encoded))

    def next_attempt(self, pending_handlers: tuple[str, ...]) -> Envelope:
        """The envelope for a retry that re-runs only ``pending_handlers``."""
        return replace(self, attempt=self.attempt + 1, pending_handlers=pending_handlers)


def _body_encoding(value: object, body: str) -> BodyEncoding:
    """The declared encoding, checked: a base64 body must decode, so ``raw_body`` never fails later."""
    if value == "text":
        return "text"
    if value != "base64":
        raise EnvelopeError(f"unknown envelope body_encoding {value!r}")
    try:
        base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise EnvelopeError("envelope body is declared base64 but does not decode") from None
    return "base64"


def decode_wire(encoded: bytes | str) -> object:
    """The wire mapping in an encoded envelope, still unchecked (:meth:`Envelope.from_wire` checks it).

    Bytes that are not JSON come back as their text, so a reader refuses them as a malformed envelope
    and keeps them whole (in the dead letter) rather than failing on them.
    """
    try:
        return orjson.loads(encoded)
    except orjson.JSONDecodeError:
        return encoded.decode(errors="replace") if isinstance(encoded, bytes) else encoded


def batch_to_wire(envelopes: list[Envelope]) -> list[dict[str, Any]]:
    """The single positional argument of a ``process_batch`` job."""
    return [envelope.to_wire() for envelope in envelopes]
