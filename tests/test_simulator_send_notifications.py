"""What the simulator's send loop reports: the journal entry of each sent message (once), the notifications
the settings switch on (outgoingAPIMessageReceived, then statuses sent, delivered, read), each accepted by
greenq's worker schemas; sends to failing chats; and incoming messages injected through the control API.
"""

from __future__ import annotations

from typing import Any

import httpx2
import pytest

from greenq.simulator.control import SimulatorControl
from greenq.workers.validation import NotificationValidator
from tests.support.processes import wait_until
from tests.support.sends import (
    EXPECTED_TYPES,
    GROUP,
    PERSON,
    VALID_SENDS,
    api,
    receive_all,
    send_ok,
    switch_on,
)
from tests.support.simulator import INSTANCE, running_simulator

STATUSES = ["sent", "delivered", "read"]


@pytest.fixture(scope="module")
def validator() -> NotificationValidator:
    return NotificationValidator()


def journal(url: str, method: str) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = httpx2.get(api(url, method), timeout=10).json()
    return entries


def send_all_and_wait(url: str, control: SimulatorControl) -> list[str]:
    ids = [send_ok(url, method, body) for method, body in VALID_SENDS]
    wait_until(lambda: control.stats(INSTANCE)["sent"] == len(ids), 10, "every message to be sent")
    return ids


def test_sent_messages_are_journaled_once_and_nothing_is_notified_while_settings_say_no() -> None:
    with running_simulator(send_delay_ms=1) as (url, control):
        ids = send_all_and_wait(url, control)
        stats = control.stats(INSTANCE)
        outgoing = journal(url, "lastOutgoingMessages")

    assert stats["added"] == 0
    assert stats["journal_length"] == len(ids)
    assert sorted(entry["idMessage"] for entry in outgoing) == sorted(ids)
    by_id = {entry["idMessage"]: entry for entry in outgoing}
    assert [by_id[id_message]["typeMessage"] for id_message in ids] == EXPECTED_TYPES
    assert all(entry["sendByApi"] is True and entry["type"] == "outgoing" for entry in outgoing)
    first, image = by_id[ids[0]], by_id[ids[1]]
    assert (first["chatId"], first["textMessage"]) == (PERSON, "Your order has shipped")
    assert (image["downloadUrl"], image["fileName"], image["caption"]) == (
        "https://example.com/a.jpg",
        "a.jpg",
        "a",
    )
    assert by_id[ids[3]]["location"]["nameLocation"] == "Office"
    assert "Ann" in by_id[ids[4]]["contact"]["vcard"]


def test_every_notification_follows_the_settings_in_order_and_passes_the_worker_schemas(
    validator: NotificationValidator,
) -> None:
    with running_simulator(send_delay_ms=1) as (url, control):
        switch_on(url, "outgoingAPIMessageWebhook", "outgoingWebhook")
        ids = send_all_and_wait(url, control)
        notifications = receive_all(url, 4 * len(ids))
        stats = control.stats(INSTANCE)

    verdicts = [validator.validate(notification) for notification in notifications]
    assert [(verdict.status, verdict.errors) for verdict in verdicts] == [("valid", ())] * len(notifications)
    assert stats["journal_length"] == len(ids)  # queued notifications are not journaled a second time
    per_message = [notifications[4 * n : 4 * n + 4] for n in range(len(ids))]
    cases = zip(ids, VALID_SENDS, EXPECTED_TYPES, per_message, strict=True)
    for id_message, (method, body), type_message, group in cases:
        message, *statuses = group
        assert message["typeWebhook"] == "outgoingAPIMessageReceived", method
        assert (message["idMessage"], message["messageData"]["typeMessage"]) == (id_message, type_message)
        assert message["senderData"]["chatId"] == body["chatId"]
        assert message["senderData"]["sender"] == message["instanceData"]["wid"]
        assert [status["status"] for status in statuses] == STATUSES
        assert {(s["typeWebhook"], s["idMessage"], s["chatId"], s["sendByApi"]) for s in statuses} == {
            ("outgoingMessageStatus", id_message, body["chatId"], True)
        }


def test_only_the_switched_on_notification_is_emitted(validator: NotificationValidator) -> None:
    with running_simulator(send_delay_ms=1) as (url, control):
        switch_on(url, "outgoingWebhook")
        id_message = send_ok(url, "sendMessage", {"chatId": PERSON, "message": "status only"})
        wait_until(lambda: control.stats(INSTANCE)["added"] == 3, 10, "three statuses")
        notifications = receive_all(url, 3)

    assert [(n["typeWebhook"], n["idMessage"], n["status"]) for n in notifications] == [
        ("outgoingMessageStatus", id_message, status) for status in STATUSES
    ]
    assert all(validator.validate(n).status == "valid" for n in notifications)


def test_a_send_to_a_failing_chat_ends_with_one_failure_status_and_no_journal_entry(
    validator: NotificationValidator,
) -> None:
    with running_simulator(send_delay_ms=1, failing_chats=frozenset({PERSON, GROUP})) as (url, control):
        switch_on(url, "outgoingAPIMessageWebhook", "outgoingWebhook")
        to_person = send_ok(url, "sendMessage", {"chatId": PERSON, "message": "nobody there"})
        to_group = send_ok(url, "sendMessage", {"chatId": GROUP, "message": "group full"})
        wait_until(lambda: control.stats(INSTANCE)["sent"] == 2, 10, "both sends to be tried")
        notifications = receive_all(url, 2)
        sent = control.sent(INSTANCE)
        stats = control.stats(INSTANCE)

    assert [(item["idMessage"], item["status"]) for item in sent] == [
        (to_person, "noAccount"),
        (to_group, "failed"),
    ]
    assert [(n["idMessage"], n["chatId"], n["status"]) for n in notifications] == [
        (to_person, PERSON, "noAccount"),
        (to_group, GROUP, "failed"),
    ]
    assert all(n["description"] for n in notifications)
    assert all(validator.validate(n).status == "valid" for n in notifications)
    assert (stats["added"], stats["journal_length"]) == (2, 0)


def test_injected_incoming_messages_are_valid_notifications_in_personal_and_group_chats(
    validator: NotificationValidator,
) -> None:
    with running_simulator() as (url, control):
        personal = control.incoming(INSTANCE, PERSON, "hello", senderName="Ann")
        in_group = control.incoming(INSTANCE, GROUP, "hi all", sender="79005550001@c.us")
        refused = httpx2.post(
            f"{url}/sim/instances/{INSTANCE}/incoming",
            json={"chatId": "79001234567", "text": "x"},
            timeout=10,
        )
        notifications = receive_all(url, 2)
        incoming = journal(url, "lastIncomingMessages")

    assert refused.status_code == 400
    assert all(validator.validate(n).status == "valid" for n in notifications)
    assert [(n["typeWebhook"], n["idMessage"]) for n in notifications] == [
        ("incomingMessageReceived", personal),
        ("incomingMessageReceived", in_group),
    ]
    assert [n["messageData"]["textMessageData"]["textMessage"] for n in notifications] == ["hello", "hi all"]
    assert [(n["senderData"]["chatId"], n["senderData"]["sender"]) for n in notifications] == [
        (PERSON, PERSON),
        (GROUP, "79005550001@c.us"),
    ]
    assert notifications[0]["senderData"]["senderName"] == "Ann"
    assert sorted(entry["idMessage"] for entry in incoming) == sorted([personal, in_group])
