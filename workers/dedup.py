"""Content identity of a notification, for recognising GREEN API's resends.

GREEN API resends a notification when our 200 did not reach it (and pull mode sees one again after a crash
between enqueue and delete), so the same notification can arrive twice. Its identity is derived from the
fields GREEN API keeps stable across resends: instance, type, chat, message id, the status-like field and
the timestamp; a message by instance, direction, chat, idMessage and typeMessage
(greenq.core.message_identity, shared with ``greenq reconcile`` so that a rebuilt copy and the real
notification are one). A status change (sent -> delivered -> read) changes the identity, so it is not a
duplicate.

The identity never re-encodes the parsed body (a hostile body can be too deep to encode): it joins the
*scalar* fields above, and for types without a message id it adds a digest of the raw body text (a resend
carries the same bytes). A type with neither a message id nor a timestamp (``quotaExceeded`` may omit it)
has no identity: two identical bodies can be two real events, so they are never collapsed.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from greenq.core.message_identity import message_identity

#: Top-level fields that tell two different notifications of the same message apart.
_STATE_FIELDS = ("status", "stateInstance", "statusInstance", "chatState")

_SCALARS = (str, int, float, bool, type(None))


def identity(data: dict[str, Any], body: str) -> str | None:
    """A stable digest of what makes this notification unique, or None when nothing does."""
    as_message = message_identity(data)  # a message: without timestamp and typeWebhook (greenq reconcile)
    if as_message is not None:
        return as_message
    instance = data.get("instanceData")
    sender = data.get("senderData")
    message = data.get("messageData")
    parts: list[object] = [
        instance.get("idInstance") if isinstance(instance, dict) else None,
        data.get("typeWebhook"),
        sender.get("chatId") if isinstance(sender, dict) else data.get("chatId"),
        data.get("idMessage"),
        data.get("timestamp"),
        message.get("typeMessage") if isinstance(message, dict) else None,
        *(data.get(name) for name in _STATE_FIELDS),
    ]
    if data.get("idMessage") is None:
        if data.get("timestamp") is None:
            return None
        # No message id (state/device/block notifications): the exact body is the identity.
        parts.append(hashlib.blake2b(body.encode(errors="surrogatepass"), digest_size=16).hexdigest())
    # Scalars only (never a nested value): encoding them cannot recurse, and parsed integers fit in 64 bits.
    scalars = [part if isinstance(part, _SCALARS) else type(part).__name__ for part in parts]
    return hashlib.blake2b(orjson.dumps(scalars), digest_size=16).hexdigest()
