"""Specification of the notification schemas (workers/schemas): every example validates with the types its
name promises, every documented type has an example and is known, the schema files are well-formed and
self-contained, and unknown extra fields are always accepted. The verdicts on broken notifications:
tests/test_validation_verdicts.py; loading a schema set: tests/test_validation_schema_set.py.
"""

from __future__ import annotations

import json
import pathlib
from collections.abc import Iterator

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry
from referencing.jsonschema import DRAFT202012, Schema

from greenq.workers.validation import DEFAULT_SCHEMA_DIR, NotificationValidator, Verdict
from tests.support.notification_examples import (
    EXAMPLE_FILES,
    FIXTURES_DIR,
    MESSAGE_ALIASES,
    MESSAGE_TYPES,
    TEXT,
    WEBHOOK_TYPES,
    at,
    example,
    expected_types,
    fixture_for,
    notification_in,
    read_json,
)

SCHEMA_BASE_URI = "https://greenq.dev/schemas/"
DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_FILES = sorted(DEFAULT_SCHEMA_DIR.rglob("*.json"))
WEBHOOK_SCHEMA_FILES = sorted((DEFAULT_SCHEMA_DIR / "webhooks").glob("*.json"))


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
