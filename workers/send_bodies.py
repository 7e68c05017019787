"""The bodies of GREEN API's sending methods, checked when the handler asks (``ctx.send``).

Each builder returns the method and its JSON body without ``chatId`` (the outbox adds the chat). A bad
argument raises :class:`ValueError` in the handler that passed it, so that handler fails (and is retried
like any handler that raises) instead of a message GREEN API would refuse sitting in the outbox. The limits
are GREEN API's documented ones; GREEN API checks the rest and the sender dead-letters what it refuses.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Final
from urllib.parse import urlsplit

#: Longest text GREEN API sends in one message.
MAX_TEXT: Final = 20_000
#: A poll's option count and lengths (sendPoll).
MIN_OPTIONS: Final = 2
MAX_OPTIONS: Final = 12
MAX_OPTION_TEXT: Final = 100
MAX_POLL_QUESTION: Final = 255
#: Interactive buttons per message and the length of a button's text (sendInteractiveButtonsReply).
MAX_BUTTONS: Final = 3
MAX_BUTTON_TEXT: Final = 25

Body = tuple[str, dict[str, Any]]


def _text(value: object, what: str, limit: int = MAX_TEXT) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{what} must be a non-empty string")
    if len(value) > limit:
        raise ValueError(f"{what} is longer than {limit} characters")
    return value


def _optional(body: dict[str, Any], name: str, value: object, what: str) -> None:
    if value is not None:
        body[name] = _text(value, what)


def text_body(text: str, quote_id: str | None) -> Body:
    body: dict[str, Any] = {"message": _text(text, "text")}
    _optional(body, "quotedMessageId", quote_id, "quote_id")
    return "sendMessage", body


def file_by_url_body(url: str, file_name: str, caption: str | None) -> Body:
    address = urlsplit(_text(url, "url"))
    if address.scheme not in ("http", "https") or not address.netloc:
        raise ValueError("url must be an http(s) URL GREEN API can download the file from")
    name = _text(file_name, "file_name", 255)
    if "." not in name.strip(".") or "/" in name:
        raise ValueError("file_name must be a file name with an extension (GREEN API reads the type from it)")
    body: dict[str, Any] = {"urlFile": url, "fileName": name}
    _optional(body, "caption", caption, "caption")
    return "sendFileByUrl", body


def location_body(latitude: float, longitude: float, name: str | None, address: str | None) -> Body:
    for value, what, limit in ((latitude, "latitude", 90), (longitude, "longitude", 180)):
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ValueError(f"{what} must be a number")
        if abs(value) > limit:
            raise ValueError(f"{what} must be between -{limit} and {limit}")
    body: dict[str, Any] = {"latitude": latitude, "longitude": longitude}
    _optional(body, "nameLocation", name, "name")
    _optional(body, "address", address, "address")
    return "sendLocation", body


def contact_body(phone: int, first_name: str | None, last_name: str | None, company: str | None) -> Body:
    if isinstance(phone, bool) or not isinstance(phone, int) or phone <= 0:
        raise ValueError("phone must be a positive int: the number with its country code, digits only")
    contact: dict[str, Any] = {"phoneContact": phone}
    _optional(contact, "firstName", first_name, "first_name")
    _optional(contact, "lastName", last_name, "last_name")
    _optional(contact, "company", company, "company")
    return "sendContact", {"contact": contact}


def poll_body(question: str, options: Sequence[str], multiple_answers: bool) -> Body:
    if isinstance(options, str) or not MIN_OPTIONS <= len(options) <= MAX_OPTIONS:
        raise ValueError(f"a poll has {MIN_OPTIONS} to {MAX_OPTIONS} options")
    names = [_text(option, "each option", MAX_OPTION_TEXT) for option in options]
    if len(set(names)) != len(names):
        raise ValueError("a poll's options must differ from each other")
    return "sendPoll", {
        "message": _text(question, "question", MAX_POLL_QUESTION),
        "options": [{"optionName": name} for name in names],
        "multipleAnswers": bool(multiple_answers),
    }


def buttons_body(
    body: str, buttons: Sequence[tuple[str, str]], header: str | None, footer: str | None
) -> Body:
    if isinstance(buttons, str) or not 1 <= len(buttons) <= MAX_BUTTONS:
        raise ValueError(f"a message has 1 to {MAX_BUTTONS} buttons")
    listed: list[dict[str, str]] = []
    for button in buttons:
        if not isinstance(button, tuple | list) or len(button) != 2:
            raise ValueError("each button is a (buttonId, buttonText) pair")
        listed.append(
            {
                "buttonId": _text(button[0], "a buttonId"),
                "buttonText": _text(button[1], "a buttonText", MAX_BUTTON_TEXT),
            }
        )
    if len({button["buttonId"] for button in listed}) != len(listed):
        raise ValueError("button ids must differ from each other")
    message: dict[str, Any] = {"body": _text(body, "body")}
    _optional(message, "header", header, "header")
    _optional(message, "footer", footer, "footer")
    message["buttons"] = listed
    return "sendInteractiveButtonsReply", message
