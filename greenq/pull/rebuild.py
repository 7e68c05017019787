"""Rebuilding a message notification from a GREEN API journal entry, for ``greenq reconcile``.

The journal (lastIncomingMessages, lastOutgoingMessages, getChatHistory) describes a message in its own flat
shape; handlers expect the documented notification shape. The mapping is the README's "Reconciliation" table.
Only what the journal says is filled in; nothing is invented except ``senderData.sender`` of an outgoing
message (the instance itself). Types whose content the journal does not carry raise :class:`Unmappable`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from greenq.core.message_identity import message_identity


class Unmappable(ValueError):
    """A journal entry that cannot become a valid notification (its reason names the missing part)."""


@dataclass(frozen=True, slots=True)
class InstanceInfo:
    """The ``instanceData`` of notifications rebuilt for one instance (from getSettings)."""

    id_instance: int
    wid: str
    type_instance: str = "whatsapp"

    def instance_data(self) -> dict[str, Any]:
        return {"idInstance": self.id_instance, "wid": self.wid, "typeInstance": self.type_instance}


_FORWARD: Final = ("forwardingScore", "isForwarded")
_FILE: Final = ("downloadUrl", "caption", "fileName", "jpegThumbnail", "mimeType", "isAnimated")
_LINK: Final = ("text", "description", "title", "previewType", "jpegThumbnail", *_FORWARD)
_LOCATION: Final = ("nameLocation", "address", "latitude", "longitude", "jpegThumbnail")
_SENDER_NAMES: Final = ("senderName", "senderContactName")


def _message_and_chat(entry: dict[str, Any]) -> tuple[str, str]:
    """The entry's idMessage and chatId; Unmappable unless it is an incoming or outgoing message."""
    direction = entry.get("type")
    id_message, chat_id = entry.get("idMessage"), entry.get("chatId")
    if direction not in ("incoming", "outgoing"):
        raise Unmappable(f"journal entry type {direction!r} is neither incoming nor outgoing")
    if not isinstance(id_message, str) or not isinstance(chat_id, str):
        raise Unmappable("journal entry without idMessage or chatId")
    return id_message, chat_id


def skeleton(entry: dict[str, Any], instance: InstanceInfo) -> dict[str, Any]:
    """The identifying part of the notification (enough for its dedup identity)."""
    id_message, chat_id = _message_and_chat(entry)
    return {
        "typeWebhook": _type_webhook(entry),
        "instanceData": instance.instance_data(),
        "idMessage": id_message,
        "senderData": {"chatId": chat_id},
        "messageData": {"typeMessage": entry.get("typeMessage")},
    }


def identity_of(entry: dict[str, Any], instance: InstanceInfo) -> str:
    """The dedup identity the real notification of this entry has (see greenq.core.message_identity)."""
    digest = message_identity(skeleton(entry, instance))
    if digest is None:  # a skeleton is always a message with an idMessage
        raise Unmappable("journal entry is not a message")
    return digest


def rebuild(entry: dict[str, Any], instance: InstanceInfo) -> dict[str, Any]:
    """The notification GREEN API would have delivered for this journal entry."""
    id_message, chat_id = _message_and_chat(entry)
    timestamp = entry.get("timestamp")
    if not isinstance(timestamp, int) or isinstance(timestamp, bool):
        raise Unmappable("journal entry without an integer timestamp")
    return {
        "typeWebhook": _type_webhook(entry),
        "instanceData": instance.instance_data(),
        "timestamp": timestamp,
        "idMessage": id_message,
        "senderData": _sender_data(entry, chat_id, instance),
        "messageData": message_data(entry),
    }


def _type_webhook(entry: dict[str, Any]) -> str:
    if entry["type"] == "incoming":
        return "incomingMessageReceived"
    return "outgoingAPIMessageReceived" if entry.get("sendByApi") is True else "outgoingMessageReceived"


def _sender_data(entry: dict[str, Any], chat_id: str, instance: InstanceInfo) -> dict[str, Any]:
    if entry["type"] == "outgoing":
        return {"chatId": chat_id, "sender": instance.wid}
    sender = entry.get("senderId")
    data: dict[str, Any] = {"chatId": chat_id, "sender": sender if isinstance(sender, str) else chat_id}
    data.update({name: entry[name] for name in _SENDER_NAMES if isinstance(entry.get(name), str)})
    return data


def message_data(entry: dict[str, Any]) -> dict[str, Any]:
    """``messageData`` for the entry's typeMessage (see ``BUILDERS``)."""
    type_message = entry.get("typeMessage")
    build = BUILDERS.get(type_message) if isinstance(type_message, str) else None
    if build is None:
        raise Unmappable(f"the journal does not carry the content of typeMessage {type_message!r}")
    data = {"typeMessage": type_message, **build(entry)}
    quoted = entry.get("quotedMessage")
    if isinstance(quoted, dict) and isinstance(quoted.get("stanzaId"), str):
        data["quotedMessage"] = quoted
    return data


def _text(entry: dict[str, Any]) -> dict[str, Any]:
    return {"textMessageData": {"textMessage": _required(entry, "textMessage", str)}}


def _extended_text(entry: dict[str, Any]) -> dict[str, Any]:
    link = entry.get("extendedTextMessage")
    data = _pick(link, _LINK) if isinstance(link, dict) else {}
    data.setdefault("text", _required(entry, "textMessage", str))
    return {"extendedTextMessageData": {**_pick(entry, _FORWARD), **data}}


def _quoted(entry: dict[str, Any]) -> dict[str, Any]:
    built = _extended_text(entry)
    quoted = entry.get("quotedMessage")
    if isinstance(quoted, dict):
        built["extendedTextMessageData"].update(_pick(quoted, ("stanzaId", "participant")))
    return built


def _file(entry: dict[str, Any]) -> dict[str, Any]:
    _required(entry, "downloadUrl", str)
    return {"fileMessageData": {**_pick(entry, _FILE), **_pick(entry, _FORWARD)}}


def _location(entry: dict[str, Any]) -> dict[str, Any]:
    location = _required(entry, "location", dict)
    for name in ("latitude", "longitude"):
        if not isinstance(location.get(name), int | float):
            raise Unmappable(f"journal location without {name}")
    return {"locationMessageData": {**_pick(location, _LOCATION), **_pick(entry, _FORWARD)}}


def _contact(entry: dict[str, Any]) -> dict[str, Any]:
    contact = _required(entry, "contact", dict)
    if not isinstance(contact.get("vcard"), str):
        raise Unmappable("journal contact without vcard")
    return {"contactMessageData": {**_pick(contact, ("displayName", "vcard")), **_pick(entry, _FORWARD)}}


#: typeMessage -> the builder of its messageData content; other types cannot be rebuilt.
BUILDERS: Final[dict[str, Callable[[dict[str, Any]], dict[str, Any]]]] = {
    "textMessage": _text,
    "extendedTextMessage": _extended_text,
    "quotedMessage": _quoted,
    "imageMessage": _file,
    "videoMessage": _file,
    "documentMessage": _file,
    "audioMessage": _file,
    "stickerMessage": _file,
    "locationMessage": _location,
    "contactMessage": _contact,
}


def _required(entry: dict[str, Any], name: str, kind: type) -> Any:
    value = entry.get(name)
    if not isinstance(value, kind):
        raise Unmappable(f"journal {entry.get('typeMessage')} without {name}")
    return value


def _pick(data: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    return {name: data[name] for name in names if name in data and data[name] is not None}
