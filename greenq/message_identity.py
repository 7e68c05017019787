"""The identity of a message notification, shared by the workers' deduplication and ``greenq reconcile``.

A message (incoming, sent from the phone, sent through the API) is identified by its instance, direction,
chat and idMessage: GREEN API says an idMessage is unique within a chat. Its timestamp and type details are
left out because GREEN API's journal, from which the reconciler rebuilds lost notifications, does not keep
them exactly (an outgoing entry carries the time of its last status change, and the journal cannot tell a
phone-sent message from an API-sent one for certain). So a rebuilt copy and the real notification are one.
"""

from __future__ import annotations

import hashlib
from typing import Any, Final

import orjson

#: Message notifications by direction: GREEN API's journal tells incoming from outgoing, nothing finer.
MESSAGE_DIRECTIONS: Final = {
    "incomingMessageReceived": "incoming",
    "outgoingMessageReceived": "outgoing",
    "outgoingAPIMessageReceived": "outgoing",
}


def message_identity(data: dict[str, Any]) -> str | None:
    """The digest of a message notification's identity; None for other notifications (or no idMessage)."""
    direction = MESSAGE_DIRECTIONS.get(str(data.get("typeWebhook")))
    instance, sender, id_message = data.get("instanceData"), data.get("senderData"), data.get("idMessage")
    if direction is None or not isinstance(sender, dict) or not isinstance(id_message, str):
        return None
    id_instance = instance.get("idInstance") if isinstance(instance, dict) else None
    parts = ["message", id_instance, direction, sender.get("chatId"), id_message]
    return hashlib.blake2b(orjson.dumps(parts), digest_size=16).hexdigest()
