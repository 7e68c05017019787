"""The identity of a message notification, shared by the workers' deduplication and ``greenq reconcile``.

A message (incoming, sent from the phone, sent through the API) is identified by its instance, direction,
chat, idMessage (GREEN API: unique within a chat) and typeMessage (the journal names types as notifications
do; kept because GREEN API's own examples reuse one idMessage for messages of different types). The
timestamp and the exact typeWebhook are left out because GREEN API's journal, from which the reconciler
rebuilds lost notifications, does not keep them exactly: an outgoing entry carries the time of its last
status change, and phone-sent and API-sent messages are told apart only by an optional ``sendByApi``. So a
rebuilt copy and the real notification are one.
"""

from __future__ import annotations

import hashlib
from typing import Any, Final

from greenq.core.notification import (
    id_instance,
    id_message,
    sender_chat_id,
    sender_data,
    type_message,
    type_webhook,
)

#: Message notifications by direction: GREEN API's journal tells incoming from outgoing, nothing finer.
MESSAGE_DIRECTIONS: Final = {
    "incomingMessageReceived": "incoming",
    "outgoingMessageReceived": "outgoing",
    "outgoingAPIMessageReceived": "outgoing",
}


_SCALARS = (str, int, float, bool, type(None))


def message_identity(data: dict[str, Any]) -> str | None:
    """The digest of a message notification's identity; None for other notifications (or no idMessage)."""
    direction = MESSAGE_DIRECTIONS.get(str(type_webhook(data)))
    message_id = id_message(data)
    if direction is None or sender_data(data) is None or not isinstance(message_id, str):
        return None
    parts = ["message", id_instance(data), direction, sender_chat_id(data), message_id, type_message(data)]
    # Only scalars are spelled out: a hostile body's nested value is never encoded (it may be too deep).
    text = "\x1f".join(repr(part) if isinstance(part, _SCALARS) else type(part).__name__ for part in parts)
    return hashlib.blake2b(text.encode(errors="surrogatepass"), digest_size=16).hexdigest()
