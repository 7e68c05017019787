"""A validated notification as handlers see it: the parsed data plus convenient, typed accessors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from greenq.core.contract import Envelope

#: Where the human text of a message lives, per data key (first hit wins).
_TEXT_PATHS: tuple[tuple[str, str], ...] = (
    ("textMessageData", "textMessage"),
    ("extendedTextMessageData", "text"),
    ("fileMessageData", "caption"),
    ("editedMessageData", "textMessage"),
    ("buttonsResponseMessage", "selectedButtonText"),
    ("templateButtonReplyMessage", "selectedDisplayText"),
    ("listResponseMessage", "title"),
)


@dataclass(frozen=True, slots=True)
class Notification:
    """One notification after schema validation."""

    data: dict[str, Any]
    type_webhook: str
    type_message: str | None
    envelope: Envelope

    @property
    def id_instance(self) -> int | None:
        instance = self.data.get("instanceData")
        value = instance.get("idInstance") if isinstance(instance, dict) else None
        return value if isinstance(value, int) else None

    @property
    def id_message(self) -> str | None:
        value = self.data.get("idMessage")
        return value if isinstance(value, str) else None

    @property
    def chat_id(self) -> str | None:
        """The chat for messages (senderData.chatId) and for types with a top-level chatId."""
        sender = self.data.get("senderData")
        if isinstance(sender, dict) and isinstance(sender.get("chatId"), str):
            return str(sender["chatId"])
        value = self.data.get("chatId")
        return value if isinstance(value, str) else None

    @property
    def sender(self) -> str | None:
        sender = self.data.get("senderData")
        if isinstance(sender, dict) and isinstance(sender.get("sender"), str):
            return str(sender["sender"])
        value = self.data.get("from")
        return value if isinstance(value, str) else None

    @property
    def text(self) -> str | None:
        """The message's text, caption or chosen button/list title, if it has one."""
        message = self.data.get("messageData")
        if not isinstance(message, dict):
            return None
        for data_key, field in _TEXT_PATHS:
            part = message.get(data_key)
            if isinstance(part, dict) and isinstance(part.get(field), str):
                return str(part[field])
        return None


def unwrap(parsed: object) -> object:
    """The notification inside a pull-API ``{receiptId, body}`` wrapper; anything else unchanged."""
    if (
        isinstance(parsed, dict)
        and "typeWebhook" not in parsed
        and "receiptId" in parsed
        and isinstance(parsed.get("body"), dict)
    ):
        return parsed["body"]
    return parsed
