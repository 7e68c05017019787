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

#: Message notifications by direction: GREEN API's journal tells incoming from outgoing, nothing finer.
MESSAGE_DIRECTIONS: Final = {
    "incomingMessageReceived": "incoming",
    "outgoingMessageReceived": "outgoing",
    "outgoingAPIMessageReceived": "outgoing",
}


_SCALARS = (str, int, float, bool, type(None))


def message_identity(data: dict[str, Any]) -> str | None:
    """The digest of a message notification's identity; None for other notifications (or no idMessage)."""
    direction = MESSAGE_DIRECTIONS.get(str(data.get("typeWebhook")))
    instance, sender, id_message = data.get("instanceData"), data.get("senderData"), data.get("idMessage")
    if direction is None or not isinstance(sender, dict) or not isinstance(id_message, str):
        return None
    id_instance = instance.get("idInstance") if isinstance(instance, dict) else None
    message = data.get("messageData")
    type_message = message.get("typeMessage") if isinstance(message, dict) else None
    parts = ["message", id_instance, direction, sender.get("chatId"), id_message, type_message]
    # Only scalars are spelled out: a hostile body's nested value is never encoded (it may be too deep).
    text = "\x1f".join(repr(part) if isinstance(part, _SCALARS) else type(part).__name__ for part in parts)
    return hashlib.blake2b(text.encode(errors="surrogatepass"), digest_size=16).hexdigest()
