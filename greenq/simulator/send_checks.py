"""What GREEN API's sending methods accept: the simulator answers 400 with the reason for anything else, so a
sender tested against it cannot rely on bodies the real service would refuse.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

Check = Callable[[object], bool]

#: Chat ids a WhatsApp send method accepts: a personal chat or a group.
CHAT_SUFFIXES: Final = ("@c.us", "@g.us")
#: GREEN API's limit on a text message's length.
MAX_TEXT: Final = 20_000
POLL_OPTIONS: Final = range(2, 13)
BUTTONS: Final = range(1, 4)
#: Interactive button types and the field each one needs.
BUTTON_TARGETS: Final = {"copy": "copyCode", "call": "phoneNumber", "url": "url"}


def _text(value: object) -> bool:
    return isinstance(value, str) and 0 < len(value) <= MAX_TEXT


def _string(value: object) -> bool:
    return isinstance(value, str)


def _flag(value: object) -> bool:
    return isinstance(value, bool)


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _integer(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


_COMMON_OPTIONAL: Final[dict[str, Check]] = {"quotedMessageId": _text}
_FRAME: Final[dict[str, Check]] = {"header": _string, "footer": _string}

#: Per method: (required fields, optional fields) besides chatId and quotedMessageId.
FIELDS: Final[dict[str, tuple[dict[str, Check], dict[str, Check]]]] = {
    "sendMessage": ({"message": _text}, {"linkPreview": _flag}),
    "sendFileByUrl": ({"urlFile": _text, "fileName": _text}, {"caption": _string}),
    "sendLocation": (
        {"latitude": _number, "longitude": _number},
        {"nameLocation": _string, "address": _string},
    ),
    "sendContact": ({"contact": lambda value: isinstance(value, dict)}, {}),
    "sendPoll": (
        {"message": _text, "options": lambda value: isinstance(value, list)},
        {"multipleAnswers": _flag},
    ),
    "sendInteractiveButtons": ({"body": _text, "buttons": lambda value: isinstance(value, list)}, _FRAME),
    "sendInteractiveButtonsReply": (
        {"body": _text, "buttons": lambda value: isinstance(value, list)},
        _FRAME,
    ),
}

#: GREEN API's sending methods, all POST with a JSON body.
SEND_METHODS: Final = frozenset(FIELDS)


def check_send(method: str, body: object) -> str | None:
    """Why ``body`` is not a valid ``method`` request, or None when it is."""
    if not isinstance(body, dict):
        return "body must be a JSON object"
    chat_id = body.get("chatId")
    if not isinstance(chat_id, str) or not chat_id.endswith(CHAT_SUFFIXES) or len(chat_id) <= 5:
        return "chatId must be a string ending in @c.us or @g.us"
    required, optional = FIELDS[method]
    for name, check in required.items():
        if name not in body:
            return f"{name} is required"
        if not check(body[name]):
            return f"{name} has a wrong type or value"
    for name, check in (optional | _COMMON_OPTIONAL).items():
        if name in body and not check(body[name]):
            return f"{name} has a wrong type or value"
    extra = _EXTRA.get(method)
    return None if extra is None else extra(body)


def _location(body: dict[str, Any]) -> str | None:
    if not -90 <= body["latitude"] <= 90 or not -180 <= body["longitude"] <= 180:
        return "latitude must be within -90..90 and longitude within -180..180"
    return None


def _contact(body: dict[str, Any]) -> str | None:
    contact = body["contact"]
    if not _integer(contact.get("phoneContact")):
        return "contact.phoneContact must be a positive integer"
    for name in ("firstName", "middleName", "lastName", "company"):
        if name in contact and not isinstance(contact[name], str):
            return f"contact.{name} must be a string"
    return None


def _poll(body: dict[str, Any]) -> str | None:
    options = body["options"]
    if len(options) not in POLL_OPTIONS:
        return "options must hold 2 to 12 items"
    names = [option.get("optionName") if isinstance(option, dict) else None for option in options]
    if not all(_text(name) for name in names):
        return "every option needs an optionName string"
    if len(set(names)) != len(names):
        return "optionName values must be unique"
    return None


def _buttons(body: dict[str, Any], typed: bool) -> str | None:
    buttons = body["buttons"]
    if len(buttons) not in BUTTONS:
        return "buttons must hold 1 to 3 items"
    for position, button in enumerate(buttons, start=1):
        if (
            not isinstance(button, dict)
            or not _text(button.get("buttonId"))
            or not _text(button.get("buttonText"))
        ):
            return f"button {position} needs buttonId and buttonText strings"
        if not typed:
            continue
        target = BUTTON_TARGETS.get(str(button.get("type")))
        if target is None:
            return f"button {position} type must be copy, call or url"
        if not _text(button.get(target)):
            return f"button {position} of type {button['type']} needs {target}"
    return None


_EXTRA: Final[dict[str, Callable[[dict[str, Any]], str | None]]] = {
    "sendLocation": _location,
    "sendContact": _contact,
    "sendPoll": _poll,
    "sendInteractiveButtons": lambda body: _buttons(body, typed=True),
    "sendInteractiveButtonsReply": lambda body: _buttons(body, typed=False),
}
