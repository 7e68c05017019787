"""Journal entry -> notification (greenq/pull/rebuild.py), checked through the workers' real schema validator.

Two directions of evidence: documented journal entries (tests/samples/journal/, written from GREEN API's
journal field tables) rebuild into valid notifications; and every documented message notification sample
the journal can describe survives notification -> journal entry (as the simulator logs it) -> notification
with its content and its dedup identity intact.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from greenq.pull.rebuild import BUILDERS, InstanceInfo, Unmappable, rebuild
from greenq.simulator.journal import journal_entry
from greenq.workers.dedup import identity
from greenq.workers.validation import NotificationValidator
from tests.conftest import SAMPLES_DIR, load_sample
from tests.support.reconcile import message_templates

JOURNAL_DIR = SAMPLES_DIR / "journal"
INFO = InstanceInfo(id_instance=1101000001, wid="79876543210@c.us")
VALIDATOR = NotificationValidator()

#: Expected (typeWebhook, typeMessage, the messageData key holding the content) per journal sample.
EXPECTED = {
    "incoming__textMessage.json": ("incomingMessageReceived", "textMessage", "textMessageData"),
    "incoming__imageMessage.json": ("incomingMessageReceived", "imageMessage", "fileMessageData"),
    "incoming__documentMessage.json": ("incomingMessageReceived", "documentMessage", "fileMessageData"),
    "incoming__locationMessage.json": ("incomingMessageReceived", "locationMessage", "locationMessageData"),
    "incoming__contactMessage.json": ("incomingMessageReceived", "contactMessage", "contactMessageData"),
    "incoming__quotedMessage.json": ("incomingMessageReceived", "quotedMessage", "extendedTextMessageData"),
    "outgoing__extendedTextMessage.json": (
        "outgoingMessageReceived",
        "extendedTextMessage",
        "extendedTextMessageData",
    ),
    "outgoing__textMessage__sendByApi.json": ("outgoingAPIMessageReceived", "textMessage", "textMessageData"),
    "outgoing__audioMessage.json": ("outgoingMessageReceived", "audioMessage", "fileMessageData"),
    "outgoing__videoMessage.json": ("outgoingAPIMessageReceived", "videoMessage", "fileMessageData"),
}


def body_of(data: dict[str, Any]) -> str:
    return orjson.dumps(data).decode()


def journal_sample(name: str) -> dict[str, Any]:
    data = orjson.loads((JOURNAL_DIR / name).read_bytes())
    assert isinstance(data, dict)
    return data


def assert_valid(notification: dict[str, Any]) -> None:
    verdict = VALIDATOR.validate(notification)
    assert verdict.status == "valid", verdict.errors


def test_every_journal_sample_has_an_expectation() -> None:
    assert sorted(path.name for path in JOURNAL_DIR.glob("*.json")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_documented_journal_entries_rebuild_into_valid_notifications(name: str) -> None:
    entry = journal_sample(name)
    type_webhook, type_message, data_key = EXPECTED[name]

    notification = rebuild(entry, INFO)

    assert_valid(notification)
    assert notification["typeWebhook"] == type_webhook
    assert notification["messageData"]["typeMessage"] == type_message
    assert data_key in notification["messageData"]
    assert (notification["idMessage"], notification["timestamp"]) == (entry["idMessage"], entry["timestamp"])
    assert notification["senderData"]["chatId"] == entry["chatId"]
    assert notification["instanceData"] == {
        "idInstance": 1101000001,
        "wid": "79876543210@c.us",
        "typeInstance": "whatsapp",
    }
    expected_sender = entry.get("senderId", INFO.wid)
    assert notification["senderData"]["sender"] == expected_sender


def test_file_fields_and_quotes_are_carried_over() -> None:
    image = rebuild(journal_sample("incoming__imageMessage.json"), INFO)["messageData"]["fileMessageData"]
    quoted = rebuild(journal_sample("incoming__quotedMessage.json"), INFO)["messageData"]

    assert image["downloadUrl"].endswith("2a4c7a54.jpg")
    assert (image["caption"], image["fileName"], image["mimeType"]) == (
        "the receipt",
        "2a4c7a54.jpg",
        "image/jpeg",
    )
    assert quoted["extendedTextMessageData"] == {
        "text": "Yes, that one",
        "stanzaId": "BAE5F4886F6F2D05",
        "participant": "79876543210@c.us",
    }
    assert quoted["quotedMessage"]["stanzaId"] == "BAE5F4886F6F2D05"


def round_trip_cases() -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{n}-{t['typeWebhook']}-{t['messageData']['typeMessage']}", t)
        for n, t in enumerate(message_templates())
    ]


def test_the_round_trip_covers_every_buildable_type() -> None:
    covered = {case["messageData"]["typeMessage"] for _, case in round_trip_cases()}
    assert covered == set(BUILDERS)


@pytest.mark.parametrize(("name", "sample"), round_trip_cases(), ids=[name for name, _ in round_trip_cases()])
def test_a_lost_notification_comes_back_valid_with_its_identity_and_content(
    name: str, sample: dict[str, Any]
) -> None:
    entry = journal_entry(sample)
    assert entry is not None
    info = InstanceInfo(sample["instanceData"]["idInstance"], sample["instanceData"]["wid"])

    rebuilt = rebuild(entry, info)

    assert_valid(rebuilt)
    assert identity(rebuilt, body_of(rebuilt)) == identity(sample, body_of(sample)), (
        "a late copy is no duplicate"
    )
    assert rebuilt["typeWebhook"] == sample["typeWebhook"]
    original, copied = sample["messageData"], rebuilt["messageData"]
    assert copied["typeMessage"] == original["typeMessage"]
    for key, value in copied.items():
        if isinstance(value, dict):
            assert value.items() <= original[key].items(), f"{key} differs from the original"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"typeMessage": "pollMessage"}, "does not carry the content of typeMessage 'pollMessage'"),
        ({"typeMessage": "imageMessage"}, "without downloadUrl"),
        ({"type": "status"}, "neither incoming nor outgoing"),
        ({"idMessage": None}, "without idMessage or chatId"),
        ({"timestamp": "1706522263"}, "without an integer timestamp"),
        ({"typeMessage": "locationMessage", "location": {"latitude": 1.0}}, "without longitude"),
        ({"typeMessage": "contactMessage", "contact": {"displayName": "x"}}, "without vcard"),
    ],
)
def test_entries_that_cannot_become_valid_notifications_are_refused(
    change: dict[str, Any], reason: str
) -> None:
    entry = {**journal_sample("incoming__textMessage.json"), **change}

    with pytest.raises(Unmappable, match=reason):
        rebuild(entry, INFO)


def test_non_message_notifications_are_not_journaled() -> None:
    assert journal_entry(load_sample("outgoingMessageStatus__sent-sendByApi.json")) is None
    assert journal_entry(load_sample("stateInstanceChanged__default.json")) is None
