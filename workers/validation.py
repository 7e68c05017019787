"""Schema validation of GREEN API notifications: one verdict per notification, schemas compiled once.

Two engines, one schema set: ``jsonschema_rs`` (Rust, ~200x faster) answers "is it valid?" for every
notification; only when it says no does the pure-Python ``jsonschema`` walk the document again to explain
why, with readable messages. Invalid notifications are rare, so the hot path stays fast and the reasons stay
good. A test checks both engines agree on every sample, fixture and mutation.

The schemas live in ``workers/schemas`` (Draft 2020-12): ``webhooks/<typeWebhook>.json`` for the envelope,
``messages/<typeMessage>.json`` for ``messageData`` of the three message notifications, and ``common.json``
for the shared pieces. References are resolved from those files only; nothing is fetched over the network.
"""

from __future__ import annotations

import json
import pathlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final, Literal

import jsonschema_rs
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, ValidationError
from referencing import Registry
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT202012, Schema

from greenq.core import notification as green_api

DEFAULT_SCHEMA_DIR: Final = pathlib.Path(__file__).parent / "schemas"

#: typeWebhook values whose ``messageData`` is validated against a message schema.
MESSAGE_WEBHOOK_TYPES: Final = frozenset(
    {"incomingMessageReceived", "outgoingMessageReceived", "outgoingAPIMessageReceived"}
)

#: Documented alternative spellings of typeMessage -> the canonical name (the message schema's file name).
MESSAGE_ALIASES: Final[Mapping[str, str]] = MappingProxyType(
    {
        # The docs example sends the singular form; the SDKs match the plural one.
        "templateButtonReplyMessage": "templateButtonsReplyMessage",
        # The 2023 docs example writes it with a capital C.
        "ContactsArrayMessage": "contactsArrayMessage",
        # The interactive-buttons-reply docs table gives the value in the singular.
        "interactiveButtonReply": "interactiveButtonsReply",
    }
)

#: Longest error message kept; a huge offending value must not flood the logs.
MAX_ERROR_CHARS: Final = 300

Status = Literal["valid", "invalid", "unknown_type"]
Problem = tuple[str, str]  # (JSONPath of the offending value, message)
Validator = Draft202012Validator


class SchemaSetError(ValueError):
    """The schema directory is inconsistent: a bug in our files, reported at start-up, not per message."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """Outcome of validating one notification."""

    status: Status
    type_webhook: str | None  # the notification's typeWebhook if it is a string, else None
    type_message: str | None  # canonical typeMessage (alias resolved) for message families, else None
    errors: tuple[str, ...]  # readable reasons, "<json path>: <message>"; empty when valid


class NotificationValidator:
    """Loads and compiles every schema once per process (construct once, reuse)."""

    __slots__ = ("_aliases", "_fast_messages", "_fast_webhooks", "_messages", "_webhooks")

    def __init__(self, schema_dir: pathlib.Path | None = None, *, fast: bool = True) -> None:
        root = DEFAULT_SCHEMA_DIR if schema_dir is None else schema_dir
        common = _read_schema(root / "common.json")
        webhooks = _read_family(root / "webhooks")
        messages = _read_family(root / "messages")
        _check_webhook_consts(webhooks)
        registry = _build_registry([common, *webhooks.values(), *messages.values()])
        self._webhooks = _compile(webhooks, registry)
        self._messages = _compile(messages, registry)
        self._aliases = _checked_aliases(MESSAGE_ALIASES, messages)
        fast_registry = jsonschema_rs.Registry(
            [(doc["$id"], doc) for doc in (common, *webhooks.values(), *messages.values())]
        )
        # fast=False keeps only the Python engine: the reference the agreement test compares against.
        self._fast_webhooks = _compile_fast(webhooks, fast_registry) if fast else {}
        self._fast_messages = _compile_fast(messages, fast_registry) if fast else {}

    @property
    def known_webhook_types(self) -> frozenset[str]:
        """Every typeWebhook that has a schema."""
        return frozenset(self._webhooks)

    @property
    def known_message_types(self) -> frozenset[str]:
        """Every typeMessage that has a schema, canonical names plus their aliases."""
        return frozenset(self._messages) | frozenset(self._aliases)

    def validate(self, notification: object) -> Verdict:
        """Classify one parsed notification as valid, invalid or of an unknown type, with the reasons."""
        if not isinstance(notification, dict):
            return _invalid(None, None, [("$", "notification must be a JSON object")])
        type_webhook = green_api.type_webhook(notification)
        if not isinstance(type_webhook, str):
            return _invalid(None, None, [_type_webhook_problem(notification)])
        validator = self._webhooks.get(type_webhook)
        if validator is None:
            reason = f"unknown typeWebhook {_clip(repr(type_webhook))}"
            return Verdict("unknown_type", type_webhook, None, (reason,))
        fast = self._fast_verdict(type_webhook, notification) if self._fast_webhooks else None
        if fast is not None:
            return fast
        problems = list(_problems(validator, notification, "$"))
        if type_webhook not in MESSAGE_WEBHOOK_TYPES:
            return _verdict(type_webhook, None, problems)
        return self._validate_message(type_webhook, notification, problems)

    def _fast_verdict(self, type_webhook: str, notification: dict[str, Any]) -> Verdict | None:
        """A valid verdict when the fast engine accepts everything, else None (explain with the slow one)."""
        if not self._fast_webhooks[type_webhook].is_valid(notification):
            return None
        if type_webhook not in MESSAGE_WEBHOOK_TYPES:
            return Verdict("valid", type_webhook, None, ())
        raw_type = green_api.type_message(notification)
        if not isinstance(raw_type, str):
            return None
        type_message = self._aliases.get(raw_type, raw_type)
        fast_message = self._fast_messages.get(type_message)
        if fast_message is None or not fast_message.is_valid(green_api.message_data(notification)):
            return None
        return Verdict("valid", type_webhook, type_message, ())

    def _validate_message(
        self, type_webhook: str, notification: dict[str, Any], problems: list[Problem]
    ) -> Verdict:
        """Check messageData against its typeMessage's schema; unknown_type needs a valid envelope."""
        raw_type = green_api.type_message(notification)
        if not isinstance(raw_type, str):
            return _verdict(type_webhook, None, problems)  # the envelope schema has already reported it
        type_message = self._aliases.get(raw_type, raw_type)
        validator = self._messages.get(type_message)
        if validator is None:
            if problems:
                return _invalid(type_webhook, type_message, problems)
            reason = f"unknown typeMessage {_clip(repr(raw_type))}"
            return Verdict("unknown_type", type_webhook, type_message, (reason,))
        problems.extend(_problems(validator, green_api.message_data(notification), "$.messageData"))
        return _verdict(type_webhook, type_message, problems)


def _verdict(type_webhook: str, type_message: str | None, problems: list[Problem]) -> Verdict:
    """Valid when nothing was found, invalid otherwise."""
    if problems:
        return _invalid(type_webhook, type_message, problems)
    return Verdict("valid", type_webhook, type_message, ())


def _invalid(type_webhook: str | None, type_message: str | None, problems: list[Problem]) -> Verdict:
    """An invalid verdict whose reasons are sorted by path, so logs and tests read the same every time."""
    errors = tuple(f"{path}: {message}" for path, message in sorted(problems))
    return Verdict("invalid", type_webhook, type_message, errors)


def _type_webhook_problem(notification: Mapping[str, object]) -> Problem:
    """Why typeWebhook cannot be used for routing: missing, or not a string."""
    if "typeWebhook" not in notification:
        return ("$", "'typeWebhook' is a required property")
    value = notification["typeWebhook"]
    return ("$.typeWebhook", _clip(f"{value!r} is not of type 'string'"))


def _problems(validator: Validator, instance: object, root: str) -> Iterator[Problem]:
    """Every schema violation as (path, message), the path re-rooted at the instance's place."""
    for error in validator.iter_errors(instance):
        yield _where(error, root), _clip(error.message)


def _where(error: ValidationError, root: str) -> str:
    """JSONPath of the offending value; jsonschema's path starts at the validated instance ('$')."""
    return root + error.json_path[1:]


def _clip(text: str) -> str:
    """Cap a message at MAX_ERROR_CHARS characters."""
    if len(text) <= MAX_ERROR_CHARS:
        return text
    return text[: MAX_ERROR_CHARS - 3] + "..."


def _read_schema(path: pathlib.Path) -> dict[str, Any]:
    """One schema document, checked against the Draft 2020-12 metaschema and required to carry an $id."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        Draft202012Validator.check_schema(document)
    except (OSError, ValueError, SchemaError) as exc:
        raise SchemaSetError(f"cannot load schema {path}: {exc}") from exc
    if not isinstance(document, dict) or not isinstance(document.get("$id"), str):
        raise SchemaSetError(f"schema {path} must be an object with a string $id")
    return document


def _read_family(directory: pathlib.Path) -> dict[str, dict[str, Any]]:
    """All schemas of one directory, keyed by file name: the type they validate."""
    schemas = {path.stem: _read_schema(path) for path in sorted(directory.glob("*.json"))}
    if not schemas:
        raise SchemaSetError(f"no schemas in {directory}")
    return schemas


def _check_webhook_consts(webhooks: Mapping[str, Mapping[str, Any]]) -> None:
    """A webhook schema must pin typeWebhook to its own file name, or routing and validation disagree."""
    for name, schema in webhooks.items():
        pinned = schema.get("properties", {}).get("typeWebhook", {}).get("const")
        if pinned != name:
            raise SchemaSetError(f"webhooks/{name}.json pins typeWebhook to {pinned!r}, expected {name!r}")


def _build_registry(documents: Iterable[Mapping[str, Any]]) -> Registry[Schema]:
    """A registry of our documents only: with no retrieve hook, an unknown reference fails, never fetches."""
    documents = list(documents)
    registry: Registry[Schema] = Registry().with_resources(
        (document["$id"], DRAFT202012.create_resource(document)) for document in documents
    )
    registry = registry.crawl()
    for document in documents:
        _check_refs(registry, document)
    return registry


def _check_refs(registry: Registry[Schema], document: Mapping[str, Any]) -> None:
    """Resolve every $ref now, so a typo fails at start-up instead of while validating a message."""
    resolver = registry.resolver(base_uri=document["$id"])
    for reference in _refs(document):
        try:
            resolver.lookup(reference)
        except Unresolvable as exc:
            raise SchemaSetError(f"{document['$id']}: unresolvable $ref {reference!r}") from exc


def _refs(node: object) -> Iterator[str]:
    """Every $ref string in a schema document (our schemas do not nest $id, so one base URI serves all)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            elif key not in ("const", "enum", "examples", "default"):
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def _compile(schemas: Mapping[str, Mapping[str, Any]], registry: Registry[Schema]) -> dict[str, Validator]:
    """One reusable validator per type; building them is the expensive part, so it happens once."""
    return {name: Draft202012Validator(schema, registry=registry) for name, schema in schemas.items()}


def _compile_fast(
    schemas: Mapping[str, Mapping[str, Any]], registry: jsonschema_rs.Registry
) -> dict[str, Any]:
    """The Rust validators; format checks off (as in the Python engine), never any network access."""
    return {
        name: jsonschema_rs.validator_for(dict(schema), registry=registry, validate_formats=False)
        for name, schema in schemas.items()
    }


def _checked_aliases(aliases: Mapping[str, str], messages: Mapping[str, object]) -> dict[str, str]:
    """Aliases whose target has a schema; a dangling alias is a bug in this module."""
    for alias, target in aliases.items():
        if target not in messages:
            raise SchemaSetError(f"typeMessage alias {alias!r} points to {target!r}, which has no schema")
    return dict(aliases)
