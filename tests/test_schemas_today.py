"""Today's shapes (issue 11, section 2): what GREEN API's current documents describe, accepted; their
documented fields still type-checked, so a broken notification is still caught.

Examples: tests/samples (copied from GREEN API's documentation) and tests/fixtures/notifications (built from
the field tables where no full example exists; each name says what it exercises).
"""

from __future__ import annotations

import json
import pathlib
from typing import Any

import pytest

from greenq.workers.validation import NotificationValidator, Verdict

TESTS_DIR = pathlib.Path(__file__).parent
SAMPLES_DIR = TESTS_DIR / "samples"
FIXTURES_DIR = TESTS_DIR / "fixtures" / "notifications"


@pytest.fixture(scope="module")
def validator() -> NotificationValidator:
    return NotificationValidator()


def example(name: str) -> dict[str, Any]:
    path = SAMPLES_DIR / name
    document: dict[str, Any] = json.loads((path if path.exists() else FIXTURES_DIR / name).read_text())
    return document


def verdict_of(validator: NotificationValidator, name: str, **changes: Any) -> Verdict:
    """The verdict for example ``name`` after setting dotted paths (``messageData.x.y=value``)."""
    document = example(name)
    for dotted, value in changes.items():
        *parents, last = dotted.split("__")
        node = document
        for key in parents:
            node = node[key]
        if value is DROP:
            del node[last]
        else:
            node[last] = value
    return validator.validate(document)


DROP = object()
RESPONSE = "outgoingMessageReceived__interactiveButtonsResponse.json"
ORDER = "incomingMessageReceived__orderMessage-from-field-table.json"
PRODUCT = "incomingMessageReceived__productMessage-from-field-table.json"
TELEGRAM = "incomingMessageReceived__textMessage__telegram-en.json"
MAX_V3 = "incomingMessageReceived__imageMessage__v3.json"


# ------------------------------------------------------------------------------------------ accepted


def test_a_button_choice_is_valid_not_unknown_type(validator: NotificationValidator) -> None:
    verdict = validator.validate(example(RESPONSE))

    assert verdict == Verdict("valid", "outgoingMessageReceived", "interactiveButtonsResponse", ())


REPLY_PREFIX = "incomingMessageReceived__interactiveButtonsReply"


@pytest.mark.parametrize(
    "variant",
    [
        "",
        "-choice-in-interactiveButtonsReply",
        "-typo-with-interactiveButtonsResponse-key",
        "-singular-spelling-sdk-key",
    ],
    ids=["buttons", "choice", "typo + response key", "typo + SDK key"],
)
def test_interactive_buttons_reply_in_every_documented_spelling_and_place(
    validator: NotificationValidator, variant: str
) -> None:
    verdict = validator.validate(example(f"{REPLY_PREFIX}{variant}.json"))

    assert (verdict.status, verdict.type_message) == ("valid", "interactiveButtonsReply")


@pytest.mark.parametrize("index", [1, "1"], ids=["number", "string"])
def test_selected_index_may_be_a_number_or_a_string(validator: NotificationValidator, index: object) -> None:
    verdict = verdict_of(validator, RESPONSE, messageData__interactiveButtonsResponse__selectedIndex=index)

    assert verdict.status == "valid"


@pytest.mark.parametrize(
    ("name", "type_webhook"),
    [
        (ORDER, "incomingMessageReceived"),
        ("outgoingAPIMessageReceived__orderMessage-numeric-price.json", "outgoingAPIMessageReceived"),
        (PRODUCT, "incomingMessageReceived"),
        ("outgoingMessageReceived__productMessage-no-image.json", "outgoingMessageReceived"),
    ],
)
def test_catalog_messages_incoming_and_outgoing(
    validator: NotificationValidator, name: str, type_webhook: str
) -> None:
    verdict = validator.validate(example(name))

    assert (verdict.status, verdict.type_webhook) == ("valid", type_webhook)


@pytest.mark.parametrize("status", ["failed", "noAccount", "notInGroup", "yellowCard", "noActiveSession"])
def test_every_documented_failure_status_with_a_description(
    validator: NotificationValidator, status: str
) -> None:
    verdict = verdict_of(
        validator,
        "outgoingMessageStatus__failed-SWE004-group.json",
        status=status,
        description=f"{status}: as documented",
    )

    assert verdict == Verdict("valid", "outgoingMessageStatus", None, ())


@pytest.mark.parametrize("status", ["pickUp", "hungUp", "invalid", "a status from the future"])
def test_outgoing_call_statuses(validator: NotificationValidator, status: str) -> None:
    assert verdict_of(validator, "outgoingCall__hungUp-video-group.json", status=status).status == "valid"


@pytest.mark.parametrize(
    ("chat_id", "sender"),
    [
        ("207544214519912@lid", "207544214519912@lid"),
        ("120363043968066561@g.us", "207544214519912@lid"),
        ("-10000000000000", "10000000"),
        ("10000000", "10000000"),
        ("71234567890@c.us", "71234567890@c.us"),
    ],
    ids=["lid personal", "lid in a group", "MAX/Telegram group", "MAX/Telegram personal", "WhatsApp"],
)
def test_chat_and_sender_ids_of_every_instance_kind(
    validator: NotificationValidator, chat_id: str, sender: str
) -> None:
    verdict = verdict_of(
        validator,
        "incomingMessageReceived__textMessage.json",
        senderData__chatId=chat_id,
        senderData__sender=sender,
    )

    assert verdict.status == "valid"


@pytest.mark.parametrize("phone", [79876543210, "79876543210"], ids=["number (documented)", "string"])
@pytest.mark.parametrize("name", [TELEGRAM, MAX_V3], ids=["telegram", "max"])
def test_sender_phone_number_of_max_and_telegram(
    validator: NotificationValidator, name: str, phone: object
) -> None:
    assert verdict_of(validator, name, senderData__senderPhoneNumber=phone).status == "valid"


@pytest.mark.parametrize("chat_type", ["user", "group", "supergroup", "channel", "bot", "new kind"])
def test_telegram_chat_and_sender_types(validator: NotificationValidator, chat_type: str) -> None:
    verdict = verdict_of(
        validator, TELEGRAM, senderData__chatType=chat_type, senderData__senderType=chat_type
    )

    assert verdict.status == "valid"


@pytest.mark.parametrize("type_instance", ["whatsapp", "v3", "telegram", "a platform from the future"])
def test_instance_kinds(validator: NotificationValidator, type_instance: str) -> None:
    assert verdict_of(validator, TELEGRAM, instanceData__typeInstance=type_instance).status == "valid"


# ------------------------------------------------------------------------------------------ still caught


@pytest.mark.parametrize(
    ("name", "changes", "reason"),
    [
        (
            RESPONSE,
            {"messageData__interactiveButtonsResponse": DROP},
            "$.messageData: 'interactiveButtonsResponse' is a required property",
        ),
        (
            RESPONSE,
            {"messageData__interactiveButtonsResponse__selectedIndex": True},
            "$.messageData.interactiveButtonsResponse.selectedIndex: True is not of type 'integer', 'string'",
        ),
        (
            RESPONSE,
            {
                "messageData__interactiveButtonsResponse__selectedIndex": DROP,
                "messageData__interactiveButtonsResponse__selectedId": DROP,
            },
            "$.messageData.interactiveButtonsResponse: ",
        ),
        (
            "incomingMessageReceived__interactiveButtonsReply.json",
            {"messageData__interactiveButtonsReply": DROP},
            "$.messageData: ",
        ),
        (
            ORDER,
            {"messageData__orderMessage": "cart"},
            "$.messageData.orderMessage: 'cart' is not of type 'object'",
        ),
        (
            ORDER,
            {"messageData__orderMessage__orderId": 1234},
            "$.messageData.orderMessage.orderId: 1234 is not",
        ),
        (
            PRODUCT,
            {"messageData__productMessage": DROP},
            "$.messageData: 'productMessage' is a required property",
        ),
        (
            PRODUCT,
            {"messageData__productMessage__productImageCount": "one"},
            "$.messageData.productMessage.productImageCount: 'one' is not of type 'integer'",
        ),
        (TELEGRAM, {"senderData__senderPhoneNumber": None}, "$.senderData.senderPhoneNumber: None is not of"),
        (TELEGRAM, {"senderData__chatType": 1}, "$.senderData.chatType: 1 is not of type 'string'"),
        (TELEGRAM, {"senderData__chatId": -10000000000000}, "$.senderData.chatId: -10000000000000 is not of"),
        (
            "outgoingMessageStatus__failed-SWE004-group.json",
            {"description": {"code": "SWE004"}},
            "$.description: {'code': 'SWE004'} is not of type 'string'",
        ),
    ],
    ids=[
        "response without data",
        "selectedIndex a bool",
        "choice without id or index",
        "reply without data",
        "order not an object",
        "orderId a number",
        "product without data",
        "image count as text",
        "phone number null",
        "chatType a number",
        "chat id a JSON number",
        "status description an object",
    ],
)
def test_documented_fields_are_still_type_checked(
    validator: NotificationValidator, name: str, changes: dict[str, Any], reason: str
) -> None:
    verdict = verdict_of(validator, name, **changes)

    assert verdict.status == "invalid"
    assert any(error.startswith(reason) for error in verdict.errors), verdict.errors
