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
from greenq.core.notification import (
    chat_field,
    id_instance,
    id_message,
    states,
    timestamp,
    type_message,
    type_webhook,
)

_SCALARS = (str, int, float, bool, type(None))


def identity(data: dict[str, Any], body: str) -> str | None:
    """A stable digest of what makes this notification unique, or None when nothing does."""
    as_message = message_identity(data)  # a message: without timestamp and typeWebhook (greenq reconcile)
    if as_message is not None:
        return as_message
    parts: list[object] = [
        id_instance(data),
        type_webhook(data),
        chat_field(data),
        id_message(data),
        timestamp(data),
        type_message(data),
        *states(data),
    ]
    if id_message(data) is None:
        if timestamp(data) is None:
            return None
        # No message id (state/device/block notifications): the exact body is the identity.
        parts.append(hashlib.blake2b(body.encode(errors="surrogatepass"), digest_size=16).hexdigest())
    # Scalars only (never a nested value): encoding them cannot recurse, and parsed integers fit in 64 bits.
    scalars = [part if isinstance(part, _SCALARS) else type(part).__name__ for part in parts]
    return hashlib.blake2b(orjson.dumps(scalars), digest_size=16).hexdigest()
