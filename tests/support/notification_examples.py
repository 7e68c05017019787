"""The notification examples the schema and validation tests share, and mutations to break them.

Examples come from tests/samples (real bodies from GREEN API's docs) and tests/fixtures/notifications
(hand-built from the documented shapes). Both are named ``<typeWebhook>__<variant>.json``; for message
notifications the variant starts with the canonical typeMessage, optionally followed by ``-<detail>``.
The ``validator`` fixture is a pytest plugin fixture (tests/conftest.py loads this module).
"""

from __future__ import annotations

import json
import pathlib
from collections.abc import Callable
from typing import Any

import pytest

from greenq.workers.validation import NotificationValidator

TESTS_DIR = pathlib.Path(__file__).parent.parent
SAMPLES_DIR = TESTS_DIR / "samples"
FIXTURES_DIR = TESTS_DIR / "fixtures" / "notifications"
WRAPPER_PREFIX = (
    "receiveNotification-response"  # pull-API {receiptId, body}; variant is <typeWebhook>_<typeMessage>
)

MESSAGE_WEBHOOK_TYPES = ("incomingMessageReceived", "outgoingMessageReceived", "outgoingAPIMessageReceived")
WEBHOOK_TYPES = (
    *MESSAGE_WEBHOOK_TYPES,
    "outgoingMessageStatus",
    "stateInstanceChanged",
    "statusInstanceChanged",
    "deviceInfo",
    "incomingCall",
    "incomingBlock",
    "quotaExceeded",
    "outgoingCall",
)
MESSAGE_TYPES = (
    "textMessage",
    "extendedTextMessage",
    "quotedMessage",
    "imageMessage",
    "videoMessage",
    "documentMessage",
    "audioMessage",
    "locationMessage",
    "contactMessage",
    "contactsArrayMessage",
    "stickerMessage",
    "reactionMessage",
    "groupInviteMessage",
    "pollMessage",
    "pollUpdateMessage",
    "editedMessage",
    "deletedMessage",
    "buttonsMessage",
    "templateMessage",
    "listMessage",
    "buttonsResponseMessage",
    "templateButtonsReplyMessage",
    "listResponseMessage",
    "interactiveButtons",
    "interactiveButtonsReply",
    "interactiveButtonsResponse",
    "orderMessage",
    "productMessage",
)
#: Documented alternative spellings and the canonical typeMessage each must resolve to.
MESSAGE_ALIASES = {
    "templateButtonReplyMessage": "templateButtonsReplyMessage",
    "ContactsArrayMessage": "contactsArrayMessage",
    "interactiveButtonReply": "interactiveButtonsReply",
}

SAMPLE_FILES = sorted(SAMPLES_DIR.glob("*.json"))
FIXTURE_FILES = sorted(FIXTURES_DIR.glob("*.json"))
EXAMPLE_FILES = SAMPLE_FILES + FIXTURE_FILES
TEXT = "incomingMessageReceived__textMessage.json"

Mutation = Callable[[dict[str, Any]], None]


@pytest.fixture(scope="module")
def validator() -> NotificationValidator:
    """One validator per test module: building one loads and checks every schema file."""
    return NotificationValidator()


def read_json(path: pathlib.Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def notification_in(path: pathlib.Path) -> dict[str, Any]:
    """The notification an example file carries (the pull-API wrapper holds it in ``body``)."""
    document: dict[str, Any] = read_json(path)
    if path.name.startswith(WRAPPER_PREFIX + "__"):
        body: dict[str, Any] = document["body"]
        return body
    return document


def example(name: str) -> dict[str, Any]:
    """A fresh copy of a sample or fixture notification, by file name."""
    path = SAMPLES_DIR / name
    return notification_in(path if path.exists() else FIXTURES_DIR / name)


def expected_types(path: pathlib.Path) -> tuple[str, str | None]:
    """(typeWebhook, canonical typeMessage) an example file's name promises.

    Names are ``<typeWebhook>__<typeMessage or variant>[-<note>][__<note>]``.
    """
    prefix, variant = path.stem.split("__", 1)
    variant = variant.split("__", 1)[0]
    type_webhook = prefix
    if prefix == WRAPPER_PREFIX:
        type_webhook, variant = variant.split("_", 1)
    if type_webhook not in MESSAGE_WEBHOOK_TYPES:
        return type_webhook, None
    return type_webhook, variant.split("-", 1)[0]


def fixture_for(type_message: str) -> str:
    """File name of the first example of a canonical typeMessage."""
    return next(path.name for path in EXAMPLE_FILES if expected_types(path)[1] == type_message)


def at(document: dict[str, Any], keys: tuple[str, ...]) -> Any:
    node: Any = document
    for key in keys:
        node = node[key]
    return node


def drop(*keys: str) -> Mutation:
    def mutate(document: dict[str, Any]) -> None:
        del at(document, keys[:-1])[keys[-1]]

    return mutate


def put(value: object, *keys: str) -> Mutation:
    def mutate(document: dict[str, Any]) -> None:
        at(document, keys[:-1])[keys[-1]] = value

    return mutate
