"""NotificationValidator's verdicts on broken notifications: ``invalid`` with a reason naming the field (all
errors, sorted by path, values clipped), and ``unknown_type`` for a type no schema describes."""

from __future__ import annotations

import pytest

from greenq.workers.validation import NotificationValidator, Verdict
from tests.support.notification_examples import MESSAGE_WEBHOOK_TYPES, TEXT, Mutation, drop, example, put

# ---------------------------------------------------------------------------------------------- invalid


@pytest.mark.parametrize(
    ("name", "mutate", "reason"),
    [
        pytest.param(
            TEXT, drop("instanceData"), "$: 'instanceData' is a required property", id="no-instanceData"
        ),
        pytest.param(TEXT, drop("timestamp"), "$: 'timestamp' is a required property", id="no-timestamp"),
        pytest.param(TEXT, drop("idMessage"), "$: 'idMessage' is a required property", id="no-idMessage"),
        pytest.param(TEXT, drop("senderData"), "$: 'senderData' is a required property", id="no-senderData"),
        pytest.param(
            TEXT, drop("messageData"), "$: 'messageData' is a required property", id="no-messageData"
        ),
        pytest.param(
            TEXT,
            drop("instanceData", "idInstance"),
            "$.instanceData: 'idInstance' is a required property",
            id="no-idInstance",
        ),
        pytest.param(
            TEXT, drop("instanceData", "wid"), "$.instanceData: 'wid' is a required property", id="no-wid"
        ),
        pytest.param(
            TEXT,
            drop("senderData", "chatId"),
            "$.senderData: 'chatId' is a required property",
            id="no-chatId",
        ),
        pytest.param(
            TEXT,
            drop("senderData", "sender"),
            "$.senderData: 'sender' is a required property",
            id="no-sender",
        ),
        pytest.param(
            TEXT,
            drop("messageData", "typeMessage"),
            "$.messageData: 'typeMessage' is a required property",
            id="no-typeMessage",
        ),
        pytest.param(
            TEXT,
            drop("messageData", "textMessageData"),
            "$.messageData: 'textMessageData' is a required property",
            id="no-textMessageData",
        ),
        pytest.param(
            TEXT,
            drop("messageData", "textMessageData", "textMessage"),
            "$.messageData.textMessageData: 'textMessage' is a required property",
            id="no-textMessage",
        ),
        pytest.param(
            TEXT,
            put("1588091580", "timestamp"),
            "$.timestamp: '1588091580' is not of type 'integer'",
            id="timestamp-as-string",
        ),
        pytest.param(
            TEXT,
            put("1234", "instanceData", "idInstance"),
            "$.instanceData.idInstance: '1234' is not of type 'integer'",
            id="idInstance-as-string",
        ),
        pytest.param(
            TEXT,
            put(123, "messageData", "textMessageData", "textMessage"),
            "$.messageData.textMessageData.textMessage: 123 is not of type 'string'",
            id="textMessage-as-number",
        ),
        pytest.param(
            TEXT,
            put(5, "messageData", "typeMessage"),
            "$.messageData.typeMessage: 5 is not of type 'string'",
            id="typeMessage-as-number",
        ),
        pytest.param(
            TEXT,
            put("79001234568@c.us", "senderData"),
            "$.senderData: '79001234568@c.us' is not of type 'object'",
            id="senderData-as-string",
        ),
        pytest.param(
            "incomingMessageReceived__imageMessage.json",
            drop("messageData", "fileMessageData", "downloadUrl"),
            "$.messageData.fileMessageData: 'downloadUrl' is a required property",
            id="file-without-downloadUrl",
        ),
        pytest.param(
            "incomingMessageReceived__locationMessage.json",
            put("12.3", "messageData", "locationMessageData", "latitude"),
            "$.messageData.locationMessageData.latitude: '12.3' is not of type 'number'",
            id="latitude-as-string",
        ),
        pytest.param(
            "incomingMessageReceived__reactionMessage.json",
            drop("messageData", "quotedMessage"),
            "$.messageData: 'quotedMessage' is a required property",
            id="reaction-without-target",
        ),
        pytest.param(
            "incomingMessageReceived__pollMessage.json",
            drop("messageData", "pollCreationMessage"),
            "$.messageData: 'pollMessageData' is a required property",
            id="poll-without-data",
        ),
        pytest.param(
            "incomingMessageReceived__listResponseMessage.json",
            put(7, "messageData", "listResponseMessage", "singleSelectReply"),
            "$.messageData.listResponseMessage.singleSelectReply: 7 is not of type 'object', 'string'",
            id="list-reply-as-number",
        ),
        pytest.param(
            "incomingMessageReceived__listResponseMessage-object-reply.json",
            drop("messageData", "listResponseMessage", "singleSelectReply", "selectedRowId"),
            "$.messageData.listResponseMessage.singleSelectReply: 'selectedRowId' is a required property",
            id="list-reply-object-without-row",
        ),
        pytest.param(
            "incomingMessageReceived__contactsArrayMessage.json",
            drop("messageData", "messageData"),
            "$.messageData: 'messageData' is a required property",
            id="contacts-array-without-contacts",
        ),
        pytest.param(
            "incomingMessageReceived__editedMessage.json",
            drop("messageData", "editedMessageData", "stanzaId"),
            "$.messageData.editedMessageData: 'stanzaId' is a required property",
            id="edit-without-target",
        ),
        pytest.param(
            "outgoingMessageStatus__sent-sendByApi.json",
            drop("status"),
            "$: 'status' is a required property",
            id="status-without-status",
        ),
        pytest.param(
            "outgoingMessageStatus__sent-sendByApi.json",
            put("yes", "sendByApi"),
            "$.sendByApi: 'yes' is not of type 'boolean'",
            id="sendByApi-as-string",
        ),
        pytest.param(
            "stateInstanceChanged__default.json",
            drop("stateInstance"),
            "$: 'stateInstance' is a required property",
            id="no-stateInstance",
        ),
        pytest.param(
            "statusInstanceChanged__default.json",
            put(1, "statusInstance"),
            "$.statusInstance: 1 is not of type 'string'",
            id="statusInstance-as-number",
        ),
        pytest.param(
            "deviceInfo__default.json",
            drop("deviceData"),
            "$: 'deviceData' is a required property",
            id="no-device",
        ),
        pytest.param(
            "incomingCall__default.json", drop("from"), "$: 'from' is a required property", id="no-caller"
        ),
        pytest.param(
            "incomingBlock__default.json",
            drop("chatState"),
            "$: 'chatState' is a required property",
            id="no-state",
        ),
        pytest.param(
            "quotaExceeded__default.json",
            drop("quotaData"),
            "$: 'quotaData' is a required property",
            id="no-quota",
        ),
        pytest.param(
            "quotaExceeded__default.json",
            put("three", "quotaData", "used"),
            "$.quotaData.used: 'three' does not match '^[0-9]+$'",
            id="quota-used-not-numeric",
        ),
        pytest.param(
            "outgoingCall__default.json",
            put("yes", "isVideo"),
            "$.isVideo: 'yes' is not of type 'boolean'",
            id="isVideo-as-string",
        ),
    ],
)
def test_mutation_is_invalid_with_a_reason_naming_the_field(
    validator: NotificationValidator, name: str, mutate: Mutation, reason: str
) -> None:
    notification = example(name)
    mutate(notification)

    verdict = validator.validate(notification)

    assert verdict.status == "invalid"
    assert reason in verdict.errors


def test_missing_type_webhook_is_invalid(validator: NotificationValidator) -> None:
    notification = example(TEXT)
    del notification["typeWebhook"]

    verdict = validator.validate(notification)

    assert verdict == Verdict("invalid", None, None, ("$: 'typeWebhook' is a required property",))


@pytest.mark.parametrize("value", [42, None, ["incomingMessageReceived"], {"name": "x"}])
def test_non_string_type_webhook_is_invalid(validator: NotificationValidator, value: object) -> None:
    notification = example(TEXT)
    notification["typeWebhook"] = value

    verdict = validator.validate(notification)

    assert verdict == Verdict("invalid", None, None, (f"$.typeWebhook: {value!r} is not of type 'string'",))


@pytest.mark.parametrize(
    "value", [[], [{"typeWebhook": "incomingMessageReceived"}], "text", None, 42, 1.5, True]
)
def test_non_object_notification_is_invalid(validator: NotificationValidator, value: object) -> None:
    verdict = validator.validate(value)

    assert verdict == Verdict("invalid", None, None, ("$: notification must be a JSON object",))


def test_envelope_and_message_errors_are_reported_together_sorted_by_path(
    validator: NotificationValidator,
) -> None:
    notification = example(TEXT)
    del notification["senderData"]["chatId"]
    notification["messageData"]["textMessageData"]["textMessage"] = 123

    verdict = validator.validate(notification)

    assert verdict.errors == (
        "$.messageData.textMessageData.textMessage: 123 is not of type 'string'",
        "$.senderData: 'chatId' is a required property",
    )


def test_invalid_message_still_reports_its_types(validator: NotificationValidator) -> None:
    notification = example(TEXT)
    del notification["messageData"]["textMessageData"]

    verdict = validator.validate(notification)

    assert (verdict.status, verdict.type_webhook, verdict.type_message) == (
        "invalid",
        "incomingMessageReceived",
        "textMessage",
    )


def test_huge_offending_value_is_clipped_in_the_reason(validator: NotificationValidator) -> None:
    notification = example(TEXT)
    notification["messageData"]["textMessageData"]["textMessage"] = ["x" * 100_000]
    path = "$.messageData.textMessageData.textMessage: "

    (error,) = validator.validate(notification).errors

    assert error.startswith(path + "['xxx")
    assert len(error) <= len(path) + 300


# ---------------------------------------------------------------------------------------------- unknown types


def test_unknown_type_webhook_is_unknown_type(validator: NotificationValidator) -> None:
    verdict = validator.validate({"typeWebhook": "fooBar", "anything": 1})

    assert verdict == Verdict("unknown_type", "fooBar", None, ("unknown typeWebhook 'fooBar'",))


@pytest.mark.parametrize("type_webhook", MESSAGE_WEBHOOK_TYPES)
def test_unknown_type_message_is_unknown_type(validator: NotificationValidator, type_webhook: str) -> None:
    notification = example(TEXT)
    notification["typeWebhook"] = type_webhook
    notification["messageData"] = {"typeMessage": "fooMessage", "fooMessageData": {"x": 1}}

    verdict = validator.validate(notification)

    assert verdict == Verdict(
        "unknown_type", type_webhook, "fooMessage", ("unknown typeMessage 'fooMessage'",)
    )


def test_unknown_type_message_in_a_broken_envelope_is_invalid(validator: NotificationValidator) -> None:
    notification = example(TEXT)
    notification["messageData"] = {"typeMessage": "fooMessage"}
    del notification["instanceData"]

    verdict = validator.validate(notification)

    assert verdict == Verdict(
        "invalid", "incomingMessageReceived", "fooMessage", ("$: 'instanceData' is a required property",)
    )
