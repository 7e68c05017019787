"""How ``greenq dlq list`` and ``show`` print a dead letter: one line, a JSON object, or every field."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from greenq.core.deadletters import DeadLetter

REASON_CHARS = 160


def line(letter: DeadLetter) -> str:
    """Id, time, outcome, typeWebhook, idInstance and the first reason (shortened), on one line."""
    reason = letter.reasons[0] if letter.reasons else "-"
    reason = " ".join(reason.split())[:REASON_CHARS]
    instance = "-" if letter.id_instance is None else str(letter.id_instance)
    return "  ".join(
        (
            str(letter.entry_id),
            _stamp(letter.entry_id, letter.failed_at),
            f"{letter.outcome.value:<12}",
            letter.type_webhook or "-",
            instance,
            reason,
        )
    )


def summary(letter: DeadLetter) -> dict[str, Any]:
    return {
        "id": letter.entry_id,
        "time": _stamp(letter.entry_id, letter.failed_at),
        "outcome": letter.outcome.value,
        "typeWebhook": letter.type_webhook,
        "idInstance": letter.id_instance,
        "reason": letter.reasons[0] if letter.reasons else None,
    }


def full(letter: DeadLetter) -> dict[str, Any]:
    return {
        **summary(letter),
        "reasons": list(letter.reasons),
        "failed_at": letter.failed_at,
        "envelope": letter.envelope.to_wire(),
    }


def details(letter: DeadLetter) -> str:
    """Every field, then the body: indented JSON, as received when it is not JSON, or base64."""
    envelope = letter.envelope
    pending = ", ".join(envelope.pending_handlers) if envelope.pending_handlers is not None else "all"
    lines = [
        f"id           {letter.entry_id}",
        f"failed at    {_iso(letter.failed_at)}",
        f"outcome      {letter.outcome.value}",
        f"typeWebhook  {letter.type_webhook or '-'}",
        f"idInstance   {'-' if letter.id_instance is None else letter.id_instance}",
        "reasons",
        *(f"  - {reason}" for reason in letter.reasons),
        "envelope",
        f"  source       {envelope.source}",
        f"  received at  {_iso(envelope.received_at)}",
        f"  request id   {envelope.request_id}",
        f"  token name   {envelope.token_id or '-'}",
        f"  attempt      {envelope.attempt}",
        f"  handlers     {pending}",
        f"  version      {envelope.version}",
        f"  body         {len(envelope.raw_body)} bytes, stored as {envelope.body_encoding}",
        "body (base64: the received bytes are not UTF-8)" if envelope.body_encoding == "base64" else "body",
        envelope.body if envelope.body_encoding == "base64" else _pretty(envelope.body),
    ]
    return "\n".join(lines)


def _stamp(entry_id: str | None, fallback: float) -> str:
    """When the entry was written: its stream id is the millisecond timestamp."""
    millis = int(entry_id.partition("-")[0]) if entry_id else int(fallback * 1000)
    return datetime.fromtimestamp(millis / 1000, UTC).isoformat(timespec="seconds")


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds")


def _pretty(body: str) -> str:
    """The body as indented JSON; as received when it is not JSON (e.g. an ``invalid`` unreadable body)."""
    try:
        return orjson.dumps(orjson.loads(body), option=orjson.OPT_INDENT_2).decode()
    except orjson.JSONDecodeError:
        return body
