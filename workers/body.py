"""From an envelope's stored bytes to the parsed notification, or to the dead-letter verdict and its reason.

The ingress stores whatever an authenticated sender posted (answering anything but 200 would stall the GREEN
API instance), so this is where an undecodable body is caught: it ends ``invalid`` (not UTF-8, not JSON,
not one object) or ``too_large`` (over the ingress's processing limit, never parsed), with a reason a person
can act on. The dead letter keeps the exact bytes either way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import orjson

from greenq.core.contract import Envelope
from greenq.core.notification import unwrap
from greenq.core.outcomes import Outcome

#: Characters of an unreadable body kept in its log line; the dead letter holds all of it.
LOG_PREVIEW_CHARS: Final = 2048

_JSON_KINDS: Final = {list: "an array", str: "a string", int: "a number", float: "a number", bool: "a bool"}


@dataclass(frozen=True, slots=True)
class BodyReading:
    """The parsed notification, or why there is none (``outcome`` and ``reason`` set, ``data`` None)."""

    data: Any = None
    outcome: Outcome | None = None
    reason: str = ""


def read_body(envelope: Envelope) -> BodyReading:
    """Parse the envelope's body (unwrapping a pull-API ``{receiptId, body}``) or say why it cannot be."""
    if envelope.over_limit is not None:
        size = len(envelope.raw_body)
        return BodyReading(
            outcome=Outcome.TOO_LARGE,
            reason=f"body of {size} bytes is over the {envelope.over_limit}-byte processing limit "
            "(GREENQ_MAX_BODY_BYTES); stored whole, not parsed",
        )
    if envelope.body_encoding == "base64":
        return _invalid(_utf8_problem(envelope.raw_body))
    if not envelope.body.strip():
        return _invalid("body is empty" if not envelope.body else "body is only whitespace")
    try:
        parsed = orjson.loads(envelope.body)
    except orjson.JSONDecodeError as error:
        return _invalid(f"body is not valid JSON: {str(error)[:200]}")
    if not isinstance(parsed, dict):
        kind = "null" if parsed is None else _JSON_KINDS.get(type(parsed), type(parsed).__name__)
        return _invalid(f"body is {kind}, not a JSON object")
    return BodyReading(data=unwrap(parsed))


def body_preview(envelope: Envelope) -> str:
    """The body for a log line: whole when short, else its start and how much the dead letter holds."""
    body = envelope.body
    if len(body) <= LOG_PREVIEW_CHARS:
        return body
    return f"{body[:LOG_PREVIEW_CHARS]}... ({len(body)} characters in all, see the dead letter)"


def _invalid(reason: str) -> BodyReading:
    return BodyReading(outcome=Outcome.INVALID, reason=reason)


def _utf8_problem(raw: bytes) -> str:
    """Where and how ``raw`` stops being UTF-8."""
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as error:
        return f"body is not valid UTF-8 (byte {error.start}: {error.reason}); kept as base64"
    return "body was stored as base64 although it is valid UTF-8"
