"""Loading a schema set: validate() reads no files once built; a custom directory defines the known
types; a schema set that pins the wrong type, refers outside our files or breaks the metaschema fails at
start-up (SchemaSetError), never on the first notification."""

from __future__ import annotations

import builtins
import io
import json
import pathlib
import shutil

import pytest

from greenq.workers.validation import DEFAULT_SCHEMA_DIR, NotificationValidator, SchemaSetError
from tests.support.notification_examples import (
    EXAMPLE_FILES,
    TEXT,
    Mutation,
    example,
    notification_in,
    put,
    read_json,
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
