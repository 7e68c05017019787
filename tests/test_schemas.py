"""Specification of the notification schemas (workers/schemas) and of NotificationValidator's verdicts.

Examples come from tests/samples (real bodies from GREEN API's docs) and tests/fixtures/notifications
(hand-built from the documented shapes). Both are named ``<typeWebhook>__<variant>.json``; for message
notifications the variant starts with the canonical typeMessage, optionally followed by ``-<detail>``.
"""

from __future__ import annotations

import builtins
import io
import json
import pathlib
import shutil
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry
from referencing.jsonschema import DRAFT202012, Schema

from greenq.workers.validation import DEFAULT_SCHEMA_DIR, NotificationValidator, SchemaSetError, Verdict

TESTS_DIR = pathlib.Path(__file__).parent
SAMPLES_DIR = TESTS_DIR / "samples"
FIXTURES_DIR = TESTS_DIR / "fixtures" / "notifications"
WRAPPER_PREFIX = (
    "receiveNotification-response"  # pull-API {receiptId, body}; variant is <typeWebhook>_<typeMessage>
)
SCHEMA_BASE_URI = "https://greenq.dev/schemas/"
DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"

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
SCHEMA_FILES = sorted(DEFAULT_SCHEMA_DIR.rglob("*.json"))
WEBHOOK_SCHEMA_FILES = sorted((DEFAULT_SCHEMA_DIR / "webhooks").glob("*.json"))
TEXT = "incomingMessageReceived__textMessage.json"

Mutation = Callable[[dict[str, Any]], None]


@pytest.fixture(scope="module")
def validator() -> NotificationValidator:
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


def refs_in(node: object) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            elif key not in ("const", "enum", "examples", "default"):
                yield from refs_in(value)
    elif isinstance(node, list):
        for item in node:
            yield from refs_in(item)


def forbidden_extras_in(node: object) -> Iterator[str]:
    """Keywords that would reject unknown fields, which GREEN API tells integrators never to do."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("additionalProperties", "unevaluatedProperties") and value is False:
                yield key
            else:
                yield from forbidden_extras_in(value)
    elif isinstance(node, list):
        for item in node:
            yield from forbidden_extras_in(item)


# ---------------------------------------------------------------------------------------------- examples


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=[path.name for path in EXAMPLE_FILES])
def test_example_is_valid_with_the_types_its_name_promises(
    validator: NotificationValidator, path: pathlib.Path
) -> None:
    type_webhook, type_message = expected_types(path)

    verdict = validator.validate(notification_in(path))

    assert verdict == Verdict("valid", type_webhook, type_message, ())


@pytest.mark.parametrize("type_webhook", WEBHOOK_TYPES)
def test_every_webhook_type_has_an_example(type_webhook: str) -> None:
    assert any(expected_types(path)[0] == type_webhook for path in EXAMPLE_FILES)


@pytest.mark.parametrize("type_message", MESSAGE_TYPES)
def test_every_message_type_has_an_example(type_message: str) -> None:
    assert any(expected_types(path)[1] == type_message for path in EXAMPLE_FILES)


def test_duplicated_json_key_keeps_the_last_value_and_validates(validator: NotificationValidator) -> None:
    raw = (FIXTURES_DIR / "outgoingMessageStatus__noAccount-duplicate-timestamp.json").read_text(
        encoding="utf-8"
    )
    assert raw.count('"timestamp"') == 2

    notification = json.loads(raw)

    assert notification["timestamp"] == 1586700802
    assert validator.validate(notification).status == "valid"


# ---------------------------------------------------------------------------------------------- schema files


@pytest.mark.parametrize(
    "path", SCHEMA_FILES, ids=[str(p.relative_to(DEFAULT_SCHEMA_DIR)) for p in SCHEMA_FILES]
)
def test_schema_file_is_a_draft_2020_12_schema(path: pathlib.Path) -> None:
    schema = read_json(path)

    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == DRAFT_2020_12


@pytest.mark.parametrize(
    "path", SCHEMA_FILES, ids=[str(p.relative_to(DEFAULT_SCHEMA_DIR)) for p in SCHEMA_FILES]
)
def test_schema_file_never_forbids_unknown_fields(path: pathlib.Path) -> None:
    assert list(forbidden_extras_in(read_json(path))) == []


@pytest.mark.parametrize(
    "path", SCHEMA_FILES, ids=[str(p.relative_to(DEFAULT_SCHEMA_DIR)) for p in SCHEMA_FILES]
)
def test_schema_id_matches_its_location(path: pathlib.Path) -> None:
    relative = path.relative_to(DEFAULT_SCHEMA_DIR).as_posix()

    assert read_json(path)["$id"] == SCHEMA_BASE_URI + relative


@pytest.mark.parametrize(
    "path", SCHEMA_FILES, ids=[str(p.relative_to(DEFAULT_SCHEMA_DIR)) for p in SCHEMA_FILES]
)
def test_schema_file_sits_where_package_data_globs_reach(path: pathlib.Path) -> None:
    assert len(path.relative_to(DEFAULT_SCHEMA_DIR).parts) <= 2


@pytest.mark.parametrize(
    "path", SCHEMA_FILES, ids=[str(p.relative_to(DEFAULT_SCHEMA_DIR)) for p in SCHEMA_FILES]
)
def test_schema_refs_resolve_within_our_files(path: pathlib.Path) -> None:
    documents = [read_json(p) for p in SCHEMA_FILES]
    registry: Registry[Schema] = Registry().with_resources(
        (document["$id"], DRAFT202012.create_resource(document)) for document in documents
    )
    schema = read_json(path)
    resolver = registry.resolver(base_uri=schema["$id"])

    resolved = [resolver.lookup(reference).contents for reference in refs_in(schema)]

    assert all(isinstance(contents, dict) for contents in resolved)


@pytest.mark.parametrize("path", WEBHOOK_SCHEMA_FILES, ids=[p.name for p in WEBHOOK_SCHEMA_FILES])
def test_webhook_schema_pins_type_webhook_to_its_file_name(path: pathlib.Path) -> None:
    assert read_json(path)["properties"]["typeWebhook"] == {"const": path.stem}


# ---------------------------------------------------------------------------------------------- known types


@pytest.mark.parametrize("type_webhook", WEBHOOK_TYPES)
def test_documented_webhook_type_is_known(validator: NotificationValidator, type_webhook: str) -> None:
    assert type_webhook in validator.known_webhook_types


@pytest.mark.parametrize("type_message", MESSAGE_TYPES + tuple(MESSAGE_ALIASES))
def test_documented_message_type_is_known(validator: NotificationValidator, type_message: str) -> None:
    assert type_message in validator.known_message_types


@pytest.mark.parametrize(("alias", "canonical"), list(MESSAGE_ALIASES.items()))
def test_alias_validates_as_its_canonical_type(
    validator: NotificationValidator, alias: str, canonical: str
) -> None:
    notification = example(fixture_for(canonical))
    notification["messageData"]["typeMessage"] = alias

    verdict = validator.validate(notification)

    assert (verdict.status, verdict.type_message) == ("valid", canonical)


# ---------------------------------------------------------------------------------------------- extra fields


@pytest.mark.parametrize(
    ("name", "keys"),
    [
        pytest.param(TEXT, (), id="top-level"),
        pytest.param(TEXT, ("instanceData",), id="instanceData"),
        pytest.param(TEXT, ("senderData",), id="senderData"),
        pytest.param(TEXT, ("messageData",), id="messageData"),
        pytest.param(TEXT, ("messageData", "textMessageData"), id="textMessageData"),
        pytest.param(
            "incomingMessageReceived__reactionMessage.json", ("messageData", "quotedMessage"), id="quoted"
        ),
        pytest.param(
            "incomingMessageReceived__imageMessage.json", ("messageData", "fileMessageData"), id="file"
        ),
        pytest.param("outgoingMessageStatus__sent-sendByApi.json", (), id="status"),
        pytest.param("deviceInfo__default.json", ("deviceData",), id="deviceData"),
        pytest.param("quotaExceeded__default.json", ("quotaData",), id="quotaData"),
    ],
)
def test_unknown_extra_field_is_accepted(
    validator: NotificationValidator, name: str, keys: tuple[str, ...]
) -> None:
    notification = example(name)
    at(notification, keys)["fieldFromTheFuture"] = {"nested": [1, "two", None]}

    assert validator.validate(notification).status == "valid"


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


# ---------------------------------------------------------------------------------------------- construction


def test_validate_reads_no_files(validator: NotificationValidator, monkeypatch: pytest.MonkeyPatch) -> None:
    notifications = [notification_in(path) for path in EXAMPLE_FILES]
    broken = example(TEXT)
    del broken["senderData"]

    def no_io(*args: object, **kwargs: object) -> None:
        raise AssertionError("validate() must not touch the file system")

    for owner, name in [
        (builtins, "open"),
        (io, "open"),
        (pathlib.Path, "open"),
        (pathlib.Path, "read_text"),
    ]:
        monkeypatch.setattr(owner, name, no_io)

    statuses = {validator.validate(notification).status for notification in [*notifications, broken]}

    assert statuses == {"valid", "invalid"}


@pytest.fixture
def schema_copy(tmp_path: pathlib.Path) -> pathlib.Path:
    """A private copy of the schema directory that a test may break."""
    return pathlib.Path(shutil.copytree(DEFAULT_SCHEMA_DIR, tmp_path / "schemas"))


def rewrite(path: pathlib.Path, change: Mutation) -> None:
    document = read_json(path)
    change(document)
    path.write_text(json.dumps(document), encoding="utf-8")


def test_custom_schema_dir_defines_the_known_types(schema_copy: pathlib.Path) -> None:
    (schema_copy / "webhooks" / "outgoingCall.json").unlink()

    verdict = NotificationValidator(schema_copy).validate(example("outgoingCall__default.json"))

    assert verdict.status == "unknown_type"


def test_webhook_schema_pinned_to_another_type_fails_at_start_up(schema_copy: pathlib.Path) -> None:
    rewrite(
        schema_copy / "webhooks" / "deviceInfo.json", put({"const": "fooBar"}, "properties", "typeWebhook")
    )

    with pytest.raises(SchemaSetError, match="pins typeWebhook to 'fooBar'"):
        NotificationValidator(schema_copy)


def test_reference_outside_our_files_fails_at_start_up_without_fetching(schema_copy: pathlib.Path) -> None:
    rewrite(schema_copy / "messages" / "textMessage.json", put("https://example.invalid/remote.json", "$ref"))

    with pytest.raises(SchemaSetError, match="unresolvable \\$ref"):
        NotificationValidator(schema_copy)


def test_schema_breaking_the_metaschema_fails_at_start_up(schema_copy: pathlib.Path) -> None:
    rewrite(schema_copy / "common.json", put("text", "$defs", "timestamp", "type"))

    with pytest.raises(SchemaSetError, match="cannot load schema"):
        NotificationValidator(schema_copy)
