"""Recognising an outbox entry among GREEN API's records of outgoing messages.

After a call that may have reached GREEN API, the sender looks for the message in showMessagesQueue (not
sent yet: same method, same body) and in lastOutgoingMessages (sent: sent by the API, to the same chat, no
earlier than the call, with the same content). The journal keeps only some of a message's content: text,
file name and caption, coordinates, the contact's number. Polls and interactive buttons are recognised by
their type alone, which is safe only because the sender has at most one call per chat in flight and skips
any idMessage already attributed to another entry.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from greenq.core.outbox import OutboxEntry

Content = dict[str, Any]


def queued_ids(entry: OutboxEntry, listing: list[dict[str, Any]]) -> list[str]:
    """idMessages of the queued messages that are this entry's call."""
    return [
        str(item["messageID"])
        for item in listing
        if item.get("type") == entry.method and item.get("body") == entry.body and item.get("messageID")
    ]


def journaled_ids(entry: OutboxEntry, journal: list[dict[str, Any]], since: float) -> list[str]:
    """idMessages of journal entries (of lastOutgoingMessages) that may be this entry's message."""
    return [
        str(item["idMessage"])
        for item in journal
        if item.get("idMessage")
        and item.get("sendByApi") is True
        and item.get("chatId") == entry.chat
        and _number(item.get("timestamp")) >= since
        and same_content(entry.method, entry.body, item)
    ]


def same_content(method: str, body: Content, item: Content) -> bool:
    """Whether journal entry ``item`` shows the message ``method`` sends with ``body``."""
    check = _CHECKS.get(method)
    return check is not None and check(body, item)


def _text(body: Content, item: Content) -> bool:
    return item.get("typeMessage") in _TEXT_TYPES and item.get("textMessage") == body.get("message")


def _file(body: Content, item: Content) -> bool:
    return item.get("fileName") == body.get("fileName") and (item.get("caption") or "") == (
        body.get("caption") or ""
    )


def _location(body: Content, item: Content) -> bool:
    location = item.get("location")
    return (
        isinstance(location, dict)
        and _number(location.get("latitude")) == _number(body.get("latitude"))
        and _number(location.get("longitude")) == _number(body.get("longitude"))
    )


def _contact(body: Content, item: Content) -> bool:
    contact, sent = item.get("contact"), body.get("contact")
    if not isinstance(contact, dict) or not isinstance(sent, dict):
        return False
    return f"waid={sent.get('phoneContact')}:" in str(contact.get("vcard", ""))


def _of_type(type_message: str) -> Callable[[Content, Content], bool]:
    return lambda body, item: item.get("typeMessage") == type_message


def _number(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return float("-inf")
    try:
        return float(value)
    except ValueError:
        return float("-inf")


_TEXT_TYPES: Final = frozenset({"textMessage", "extendedTextMessage", "quotedMessage"})

_CHECKS: Final[dict[str, Callable[[Content, Content], bool]]] = {
    "sendMessage": _text,
    "sendFileByUrl": _file,
    "sendLocation": _location,
    "sendContact": _contact,
    "sendPoll": _of_type("pollMessage"),
    "sendInteractiveButtons": _of_type("interactiveButtons"),
    "sendInteractiveButtonsReply": _of_type("interactiveButtonsReply"),
}
