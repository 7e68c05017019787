"""GREEN API's message journal as the simulator keeps it: what lastIncomingMessages, lastOutgoingMessages and
getChatHistory answer.

GREEN API logs every message it hands over, whether or not its notification is ever delivered; that is what
makes the journal a way to recover lost notifications. Entries follow the documented journal fields (not the
notification shape), appear ``lag`` seconds after the message (GREEN API: up to 2 minutes), and the journal
keeps the newest 10,000.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from greenq.core.message_identity import MESSAGE_DIRECTIONS

#: GREEN API keeps the last 10,000 messages in the journal.
JOURNAL_SIZE: Final = 10_000

#: Seconds after an outgoing message's notification that the simulator logs it as delivered.
DELIVERED_AFTER: Final = 3

_FILE_FIELDS: Final = ("downloadUrl", "caption", "fileName", "jpegThumbnail", "mimeType", "isAnimated")
_LINK_FIELDS: Final = ("text", "description", "title", "previewType", "jpegThumbnail")
_FORWARD_FIELDS: Final = ("forwardingScore", "isForwarded")


def journal_entry(notification: dict[str, Any]) -> dict[str, Any] | None:
    """The journal entry GREEN API logs for a message notification; None for other notifications."""
    direction = MESSAGE_DIRECTIONS.get(str(notification.get("typeWebhook")))
    sender = notification.get("senderData")
    message = notification.get("messageData")
    if direction is None or not isinstance(sender, dict) or not isinstance(message, dict):
        return None
    entry: dict[str, Any] = {
        "type": direction,
        "idMessage": notification.get("idMessage"),
        "timestamp": notification.get("timestamp"),
        "typeMessage": message.get("typeMessage"),
        "chatId": sender.get("chatId"),
    }
    if direction == "incoming":
        entry["senderId"] = sender.get("sender")
        entry.update({k: sender[k] for k in ("senderName", "senderContactName") if k in sender})
    else:
        # For outgoing messages GREEN API logs the time of the last action (here: delivery, a bit later).
        entry["timestamp"] = _later(notification.get("timestamp"), DELIVERED_AFTER)
        entry["statusMessage"] = "delivered"
        entry["sendByApi"] = notification["typeWebhook"] == "outgoingAPIMessageReceived"
    entry.update(_content(message))
    return entry


def _later(timestamp: object, seconds: int) -> object:
    if isinstance(timestamp, int) and not isinstance(timestamp, bool):
        return timestamp + seconds
    return timestamp


def _content(message: dict[str, Any]) -> dict[str, Any]:
    """The journal's content fields for one messageData."""
    found: dict[str, Any] = {}
    text = message.get("textMessageData")
    link = message.get("extendedTextMessageData")
    file = message.get("fileMessageData")
    location = message.get("locationMessageData")
    contact = message.get("contactMessageData")
    if isinstance(text, dict):
        found["textMessage"] = text.get("textMessage")
    if isinstance(link, dict):
        found["textMessage"] = link.get("text")
        found["extendedTextMessage"] = _pick(link, _LINK_FIELDS + _FORWARD_FIELDS)
    if isinstance(file, dict):
        found.update(_pick(file, _FILE_FIELDS))
    if isinstance(location, dict):
        found["location"] = _pick(
            location, ("nameLocation", "address", "latitude", "longitude", "jpegThumbnail")
        )
    if isinstance(contact, dict):
        found["contact"] = _pick(contact, ("displayName", "vcard"))
    if isinstance(message.get("quotedMessage"), dict):
        found["quotedMessage"] = message["quotedMessage"]
    for part in (text, link, file, location, contact):
        if isinstance(part, dict):
            found.update(_pick(part, _FORWARD_FIELDS))
    return found


def _pick(data: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    return {name: data[name] for name in names if name in data}


@dataclass(frozen=True, slots=True)
class Logged:
    """A journal entry and the wall-clock time it was logged at."""

    entry: dict[str, Any]
    logged_at: float


class Journal:
    """One instance's journal; ``lag`` seconds pass before a logged entry becomes visible."""

    def __init__(self, lag: float = 0.0, clock: Callable[[], float] = time.time) -> None:
        self.lag = lag
        self._clock = clock
        self._logged: deque[Logged] = deque(maxlen=JOURNAL_SIZE)

    def __len__(self) -> int:
        return len(self._logged)

    def record(self, entry: dict[str, Any]) -> None:
        self._logged.append(Logged(entry, self._clock()))

    def last(self, direction: str, minutes: int) -> list[dict[str, Any]]:
        """Visible entries of one direction whose timestamp lies in the last ``minutes``, newest first."""
        since = self._clock() - minutes * 60
        return [
            entry for entry in self._visible() if entry["type"] == direction and _timestamp(entry) >= since
        ]

    def history(self, chat_id: str, count: int) -> list[dict[str, Any]]:
        """The newest ``count`` visible entries of one chat, newest first (getChatHistory)."""
        return [entry for entry in self._visible() if entry["chatId"] == chat_id][:count]

    def _visible(self) -> list[dict[str, Any]]:
        now = self._clock()
        shown = [logged.entry for logged in self._logged if logged.logged_at + self.lag <= now]
        return sorted(shown, key=_timestamp, reverse=True)


def _timestamp(entry: dict[str, Any]) -> float:
    value = entry.get("timestamp")
    return float(value) if isinstance(value, int | float) else 0.0


class RateLimit:
    """At most ``per_second`` calls in any one-second window (0 = no limit); GREEN API answers 429 past it."""

    def __init__(self, per_second: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._limit = per_second
        self._clock = clock
        self._calls: deque[float] = deque()
        self.refused = 0

    def allow(self) -> bool:
        if self._limit <= 0:
            return True
        now = self._clock()
        while self._calls and self._calls[0] <= now - 1.0:
            self._calls.popleft()
        if len(self._calls) >= self._limit:
            self.refused += 1
            return False
        self._calls.append(now)
        return True
