"""GREEN API notification fields, read in one place: path accessors and the typed ``Notification``.

Every read of a notification's fields by key path goes through the accessors below, so each GREEN API path
is spelled once. They return the value as written (any JSON value), or None when the path is absent or
crosses something that is not an object; a caller that needs a type checks it. Raw values matter: the
dedup identity and the chat key hash exactly what arrived, including a hostile body's odd types.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:  # only an annotation: the accessors stay importable by every floor-1 module
    from greenq.core.contract.envelope import Envelope

#: Where the human text of a message lives, per data key (first hit wins).
_TEXT_PATHS: tuple[tuple[str, str], ...] = (
    ("textMessageData", "textMessage"),
    ("extendedTextMessageData", "text"),
    ("fileMessageData", "caption"),
    ("editedMessageData", "textMessage"),
    ("buttonsResponseMessage", "selectedButtonText"),
    ("templateButtonReplyMessage", "selectedDisplayText"),
    ("interactiveButtonsResponse", "selectedDisplayText"),
    ("interactiveButtonsReply", "selectedDisplayText"),
    ("listResponseMessage", "title"),
)

#: Top-level fields that tell two notifications of one subject apart (sent -> delivered -> read, ...).
STATE_FIELDS: Final = ("status", "stateInstance", "statusInstance", "chatState")


def _object(data: Mapping[str, Any], key: str) -> dict[str, Any] | None:
    value = data.get(key)
    return value if isinstance(value, dict) else None


def _member(data: Mapping[str, Any], key: str, field: str) -> object:
    part = _object(data, key)
    return part.get(field) if part is not None else None


def type_webhook(data: Mapping[str, Any]) -> object:
    return data.get("typeWebhook")


def id_instance(data: Mapping[str, Any]) -> object:
    """``instanceData.idInstance``."""
    return _member(data, "instanceData", "idInstance")


def id_message(data: Mapping[str, Any]) -> object:
    return data.get("idMessage")


def timestamp(data: Mapping[str, Any]) -> object:
    return data.get("timestamp")


def message_data(data: Mapping[str, Any]) -> dict[str, Any] | None:
    """``messageData`` when it is an object."""
    return _object(data, "messageData")


def type_message(data: Mapping[str, Any]) -> object:
    """``messageData.typeMessage`` (as sent: an alias is not resolved here)."""
    return _member(data, "messageData", "typeMessage")


def sender_data(data: Mapping[str, Any]) -> dict[str, Any] | None:
    """``senderData`` when it is an object (message notifications have one)."""
    return _object(data, "senderData")


def sender_chat_id(data: Mapping[str, Any]) -> object:
    """``senderData.chatId``."""
    return _member(data, "senderData", "chatId")


def chat_field(data: Mapping[str, Any]) -> object:
    """``senderData.chatId`` when there is a senderData object (even one without chatId), else the
    top-level ``chatId``: the chat part of the dedup identity, which must not change between releases."""
    sender = sender_data(data)
    return sender.get("chatId") if sender is not None else data.get("chatId")


def chat_id(data: Mapping[str, Any]) -> str | None:
    """The chat as a string: ``senderData.chatId``, else a top-level ``chatId`` (types without senderData)."""
    chat = sender_chat_id(data)
    if isinstance(chat, str):
        return chat
    value = data.get("chatId")
    return value if isinstance(value, str) else None


def sender(data: Mapping[str, Any]) -> str | None:
    """Who wrote it: ``senderData.sender``, else a top-level ``from``."""
    value = _member(data, "senderData", "sender")
    if isinstance(value, str):
        return value
    value = data.get("from")
    return value if isinstance(value, str) else None


def text(data: Mapping[str, Any]) -> str | None:
    """The message's text, caption or chosen button/list title, if it has one."""
    message = message_data(data)
    if message is None:
        return None
    for data_key, field in _TEXT_PATHS:
        part = message.get(data_key)
        if isinstance(part, dict) and isinstance(part.get(field), str):
            return str(part[field])
    return None


def states(data: Mapping[str, Any]) -> tuple[object, ...]:
    """The values of ``STATE_FIELDS``, in that order."""
    return tuple(data.get(name) for name in STATE_FIELDS)


@dataclass(frozen=True, slots=True)
class Notification:
    """One notification after schema validation; its properties are typed views of the accessors above."""

    data: dict[str, Any]
    type_webhook: str
    type_message: str | None
    envelope: Envelope

    @property
    def id_instance(self) -> int | None:
        value = id_instance(self.data)
        return value if isinstance(value, int) else None

    @property
    def id_message(self) -> str | None:
        value = id_message(self.data)
        return value if isinstance(value, str) else None

    @property
    def chat_id(self) -> str | None:
        """The chat for messages (senderData.chatId) and for types with a top-level chatId."""
        return chat_id(self.data)

    @property
    def sender(self) -> str | None:
        return sender(self.data)

    @property
    def text(self) -> str | None:
        """The message's text, caption or chosen button/list title, if it has one."""
        return text(self.data)


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
