"""Phase 1: from a job's wire value to a :data:`~greenq.workers.results.Read`, without I/O.

Anything unexpected (a malformed envelope, a body that is not one JSON object, one too deep to re-encode,
a validator that raises) makes that one notification :class:`~greenq.workers.results.Rejected`, never the
batch.
"""

from __future__ import annotations

import logging
import time

import orjson

from greenq.core import keys, partitions
from greenq.core.contract import Envelope, EnvelopeError
from greenq.core.logs import fields
from greenq.core.notification import Notification
from greenq.core.outcomes import Outcome
from greenq.workers.body import read_body
from greenq.workers.claims import claim_for
from greenq.workers.dedup import identity
from greenq.workers.results import Read, Rejected, Valid
from greenq.workers.validation import NotificationValidator, Verdict

log = logging.getLogger("greenq.worker")

#: Deeper bodies are invalid: GREEN API's are a handful of levels deep, and orjson cannot re-encode (for a
#: handler or a log line) what is nested more than ~250 levels.
MAX_NESTING = 64


class Reader:
    """Parses, validates and claims notifications (one per process: the validator compiles its schemas)."""

    def __init__(
        self,
        validator: NotificationValidator,
        dedup_window_seconds: int,
        partitions: int = 0,
        chat_state: bool = True,
    ) -> None:
        """``partitions``: the partition count (``GREENQ_PARTITIONS``, whatever the ordering mode), for state
        keys (0: the older partition-less keys); ``chat_state``: whether the router keeps per-chat state
        (else reads carry no state key)."""
        self._validator = validator
        self._dedup_window = dedup_window_seconds
        self._partitions = partitions
        self._chat_state = chat_state

    def read(self, wire: object, origin: str) -> Read:
        """``origin`` names the notification in a dead letter when its envelope cannot be parsed."""
        started = time.perf_counter()
        try:
            envelope = Envelope.from_wire(wire)
        except EnvelopeError as error:
            # Not ours to parse: keep what we got as the body, so nothing disappears.
            kept = Envelope(body=_text_of(wire), source="replay", request_id=origin)
            return self._rejected(kept, started, origin, f"malformed envelope: {error}")
        try:
            return self._validated(envelope, started, origin)
        except Exception as error:  # e.g. RecursionError explaining a pathological body
            log.exception("notification could not be validated", extra=fields(origin=origin))
            reason = f"could not be validated: {type(error).__name__}"
            return self._rejected(envelope, started, origin, reason)

    def _validated(self, envelope: Envelope, started: float, origin: str) -> Read:
        reading = read_body(envelope)
        if reading.outcome is not None:  # not a JSON object, or too large to parse: dead letter
            return self._rejected(envelope, started, origin, reading.reason, outcome=reading.outcome)
        data = reading.data
        if _nested_deeper_than(envelope.body, data, MAX_NESTING):
            reason = f"body is nested deeper than {MAX_NESTING} levels"
            return self._rejected(envelope, started, origin, reason, data=_top_level_scalars(data))
        verdict = self._validator.validate(data)
        if verdict.status == "valid" and isinstance(data, dict) and verdict.type_webhook is not None:
            notification = Notification(data, verdict.type_webhook, verdict.type_message, envelope)
            claim = claim_for(envelope, identity(data, envelope.body), self._dedup_window)
            chat = partitions.chat_key(data)
            state_key, sender_state_key = self._state_keys(notification, chat)
            return Valid(notification, claim, started, origin, chat, state_key, sender_state_key)
        return self._invalid(envelope, started, origin, data, verdict)

    def _state_keys(self, notification: Notification, chat: str) -> tuple[str | None, str | None]:
        """The keys of its chat's and its (chat, sender)'s state documents, when the router keeps state."""
        if not self._chat_state:
            return None, None
        partition = partitions.partition_of(chat, self._partitions) if self._partitions else None
        sender = notification.sender
        sender_key = keys.sender_state_key(chat, sender, partition) if sender else None
        return keys.chat_state_key(chat, partition), sender_key

    def _invalid(
        self, envelope: Envelope, started: float, origin: str, data: object, verdict: Verdict
    ) -> Rejected:
        outcome = Outcome.UNKNOWN_TYPE if verdict.status == "unknown_type" else Outcome.INVALID
        claim = claim_for(envelope, None, self._dedup_window)
        return Rejected(envelope, claim, started, origin, outcome, verdict.errors, data, verdict)

    def _rejected(
        self,
        envelope: Envelope,
        started: float,
        origin: str,
        reason: str,
        *,
        outcome: Outcome = Outcome.INVALID,
        data: object = None,
    ) -> Rejected:
        claim = claim_for(envelope, None, self._dedup_window)
        return Rejected(envelope, claim, started, origin, outcome, (reason,), data)


def _text_of(wire: object) -> str:
    try:
        return orjson.dumps(wire, default=str).decode()
    except TypeError:
        return f"<unencodable {type(wire).__name__}>"


def _nested_deeper_than(body: str, data: object, limit: int) -> bool:
    """True if ``data`` nests containers deeper than ``limit`` (a cheap count rules most bodies out)."""
    if body.count("[") + body.count("{") <= limit:
        return False
    stack: list[tuple[object, int]] = [(data, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def _top_level_scalars(data: object) -> object:
    if not isinstance(data, dict):
        return None
    return {key: value for key, value in data.items() if not isinstance(value, dict | list)}
