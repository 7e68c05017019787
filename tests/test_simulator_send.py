"""The simulator's sending methods: each valid call is queued and answered with a fresh id, bad bodies get a
400, the send loop drains the queue in order one message per delay, showMessagesQueue/clearMessagesQueue,
429 past ``send_rate``, the ``lose_reply`` fault (processed, unanswered) against ``drop`` (unprocessed), and
the command-line options.
The notifications sending emits: tests/test_simulator_send_notifications.py.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from greenq.local.procs import free_port, stop_process, wait_for_port
from greenq.simulator.control import SimulatorControl
from tests.support.processes import GREENQ, wait_until
from tests.support.sends import GROUP, PERSON, VALID_SENDS, api, send, send_ok
from tests.support.simulator import CLEAN_UVICORN_EXITS, INSTANCE, INSTANCE_TOKEN, running_simulator, sdk

#: Long enough that the loop sends nothing else during a test once it has sent one message.
FOREVER_MS = 600_000
ID_SHAPE = re.compile(r"[0-9A-F]{16}")


@pytest.fixture
def held() -> Iterator[tuple[str, SimulatorControl]]:
    """A simulator whose send loop has just sent a first message and now waits out a very long delay: what is
    sent next stays in the outgoing queue."""
    with running_simulator(send_delay_ms=FOREVER_MS) as (url, control):
        send_ok(url, "sendMessage", {"chatId": PERSON, "message": "first"})
        wait_until(lambda: control.stats(INSTANCE)["sent"] == 1, 10, "the first message to be sent")
        yield url, control


def queue(url: str) -> list[dict[str, object]]:
    response = httpx2.get(api(url, "showMessagesQueue"), timeout=10)
    assert response.status_code == 200
    listing: list[dict[str, object]] = response.json()
    return listing


def test_each_send_method_queues_the_message_and_answers_a_fresh_id(
    held: tuple[str, SimulatorControl],
) -> None:
    url, control = held

    ids = [send_ok(url, method, body) for method, body in VALID_SENDS]

    assert all(ID_SHAPE.fullmatch(id_message) for id_message in ids)
    assert len(set(ids)) == len(ids)
    assert queue(url) == [
        {"messageID": id_message, "messagesIDs": [id_message], "type": method, "body": body}
        for id_message, (method, body) in zip(ids, VALID_SENDS, strict=True)
    ]
    stats = control.stats(INSTANCE)
    assert (stats["sent"], stats["sends_queued"], stats["send_calls"]) == (1, len(ids) + 1, len(ids) + 1)
    assert stats["outgoing_queue_length"] == len(ids)


def test_the_official_sdk_sends_with_every_method_and_manages_the_queue(
    held: tuple[str, SimulatorControl],
) -> None:
    url, _ = held
    api_client = sdk(url)

    answers = [getattr(api_client.sending, method)(**body) for method, body in VALID_SENDS]
    shown = api_client.queues.showMessagesQueue()
    cleared = api_client.queues.clearMessagesQueue()

    assert [answer.code for answer in answers] == [200] * len(VALID_SENDS)
    ids = [answer.data["idMessage"] for answer in answers]
    assert [item["messageID"] for item in shown.data] == ids
    assert [item["type"] for item in shown.data] == [method for method, _ in VALID_SENDS]
    assert (cleared.code, cleared.data) == (200, {"isCleared": True})
    assert queue(url) == []


BAD_SENDS: list[tuple[str, object]] = [
    ("sendMessage", ["not", "an", "object"]),
    ("sendMessage", {"message": "no chat"}),
    ("sendMessage", {"chatId": "79001234567", "message": "no suffix"}),
    ("sendMessage", {"chatId": "79001234567@s.whatsapp.net", "message": "wrong suffix"}),
    ("sendMessage", {"chatId": PERSON}),
    ("sendMessage", {"chatId": PERSON, "message": ""}),
    ("sendMessage", {"chatId": PERSON, "message": "hi", "linkPreview": "yes"}),
    ("sendMessage", {"chatId": PERSON, "message": "hi", "quotedMessageId": 7}),
    ("sendFileByUrl", {"chatId": PERSON, "urlFile": "https://example.com/a.jpg"}),
    ("sendFileByUrl", {"chatId": PERSON, "fileName": "a.jpg"}),
    ("sendLocation", {"chatId": PERSON, "latitude": "55", "longitude": 37.6}),
    ("sendLocation", {"chatId": PERSON, "latitude": 95.0, "longitude": 37.6}),
    ("sendContact", {"chatId": PERSON, "contact": {"phoneContact": "79001234568"}}),
    ("sendContact", {"chatId": PERSON, "contact": {"firstName": "Ann"}}),
    ("sendPoll", {"chatId": GROUP, "message": "?", "options": [{"optionName": "only"}]}),
    ("sendPoll", {"chatId": GROUP, "message": "?", "options": [{"optionName": "a"}, {"optionName": "a"}]}),
    ("sendPoll", {"chatId": GROUP, "message": "?", "options": [{"optionName": str(n)} for n in range(13)]}),
    ("sendInteractiveButtons", {"chatId": PERSON, "body": "b", "buttons": []}),
    (
        "sendInteractiveButtons",
        {"chatId": PERSON, "body": "b", "buttons": [{"buttonId": "1", "buttonText": "t"}]},
    ),
    (
        "sendInteractiveButtons",
        {"chatId": PERSON, "body": "b", "buttons": [{"type": "url", "buttonId": "1", "buttonText": "t"}]},
    ),
    ("sendInteractiveButtonsReply", {"chatId": PERSON, "body": "b", "buttons": [{"buttonId": "1"}] * 4}),
    ("sendInteractiveButtonsReply", {"chatId": PERSON, "buttons": [{"buttonId": "1", "buttonText": "t"}]}),
]


def test_bad_bodies_are_refused_with_400_and_nothing_is_queued(held: tuple[str, SimulatorControl]) -> None:
    url, control = held

    answers = [send(url, method, body) for method, body in BAD_SENDS]
    not_json = httpx2.post(api(url, "sendMessage"), content=b"{nope", timeout=10)

    assert [answer.status_code for answer in answers] == [400] * len(BAD_SENDS)
    assert all(isinstance(answer.json()["error"], str) for answer in answers)
    assert not_json.status_code == 400
    assert queue(url) == []
    assert control.stats(INSTANCE)["sends_queued"] == 1


def test_the_loop_sends_in_order_one_message_per_delay() -> None:
    with running_simulator(send_delay_ms=20) as (url, control):
        ids = [send_ok(url, "sendMessage", {"chatId": PERSON, "message": f"m{n}"}) for n in range(6)]
        wait_until(lambda: len(control.sent(INSTANCE)) == len(ids), 10, "every message to be sent")
        sent = control.sent(INSTANCE)

        assert [item["idMessage"] for item in sent] == ids
        assert [item["body"]["message"] for item in sent] == [f"m{n}" for n in range(6)]
        assert {(item["type"], item["status"]) for item in sent} == {("sendMessage", "sent")}
        assert [item["sentAt"] for item in sent] == sorted(item["sentAt"] for item in sent)
        assert queue(url) == []


def test_while_the_delay_lasts_nothing_more_is_sent_and_clear_drops_the_queue(
    held: tuple[str, SimulatorControl],
) -> None:
    url, control = held
    for n in range(3):
        send_ok(url, "sendMessage", {"chatId": PERSON, "message": f"waiting {n}"})

    waiting = queue(url)
    cleared = httpx2.get(api(url, "clearMessagesQueue"), timeout=10)

    assert [item["body"] for item in waiting] == [
        {"chatId": PERSON, "message": f"waiting {n}"} for n in range(3)
    ]
    assert cleared.json() == {"isCleared": True}
    assert queue(url) == []
    assert [item["body"]["message"] for item in control.sent(INSTANCE)] == ["first"]


def test_a_send_method_answers_429_past_send_rate_and_refused_calls_are_not_queued() -> None:
    with running_simulator(send_delay_ms=FOREVER_MS, send_rate=2) as (url, control):
        statuses = [
            send(url, "sendMessage", {"chatId": PERSON, "message": "hi"}).status_code for _ in range(6)
        ]
        other_method = send(url, "sendLocation", {"chatId": PERSON, "latitude": 1.0, "longitude": 2.0})
        refused = send(url, "sendMessage", {"chatId": PERSON, "message": "hi"})
        stats = control.stats(INSTANCE)

    assert statuses.count(429) >= 1
    assert set(statuses) == {200, 429}
    assert refused.status_code == 429
    assert refused.json() == {"error": "Too Many Requests"}
    assert other_method.status_code == 200  # the limit is per method
    assert stats["send_rate_refused"] == statuses.count(429) + 1
    assert stats["sends_queued"] == statuses.count(200) + 1


def test_lose_reply_processes_the_call_but_drop_does_not() -> None:
    with running_simulator(send_delay_ms=20) as (url, control):
        control.inject(INSTANCE, "lose_reply", 1, methods=["sendMessage"])
        with pytest.raises(httpx2.RemoteProtocolError):
            send(url, "sendMessage", {"chatId": PERSON, "message": "processed, unanswered"})
        control.inject(INSTANCE, "drop", 1, methods=["sendMessage"])
        with pytest.raises(httpx2.RemoteProtocolError):
            send(url, "sendMessage", {"chatId": PERSON, "message": "never processed"})
        last = send_ok(url, "sendMessage", {"chatId": PERSON, "message": "answered"})
        wait_until(lambda: control.stats(INSTANCE)["sent"] == 2, 10, "both processed messages to be sent")
        sent = control.sent(INSTANCE)
        stats = control.stats(INSTANCE)

    assert [item["body"]["message"] for item in sent] == ["processed, unanswered", "answered"]
    assert sent[1]["idMessage"] == last
    assert stats["faults_injected"] == 2
    assert stats["sends_queued"] == 2


def test_the_command_line_sets_the_send_options(tmp_path: Path) -> None:
    port = free_port()
    command = [*GREENQ, "simulator", "--port", str(port), "--log-level", "WARNING"]
    options = ["--send-delay-ms", "1", "--send-rate", "1", "--failing-chats", f" {GROUP},{PERSON} "]
    process = subprocess.Popen(
        [*command, "--instances", f"{INSTANCE}={INSTANCE_TOKEN}", *options],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_for_port("127.0.0.1", port, 30, process)
        url = f"http://127.0.0.1:{port}"
        control = SimulatorControl(url)
        to_group = send_ok(url, "sendMessage", {"chatId": GROUP, "message": "full"})
        second = send(url, "sendMessage", {"chatId": PERSON, "message": "too soon"})
        to_person = send_ok(url, "sendLocation", {"chatId": PERSON, "latitude": 1.0, "longitude": 2.0})
        wait_until(lambda: control.stats(INSTANCE)["sent"] == 2, 10, "both sends to be tried")
        sent = control.sent(INSTANCE)
        control.close()
    finally:
        assert stop_process(process) in CLEAN_UVICORN_EXITS

    assert second.status_code == 429
    assert [(item["idMessage"], item["status"]) for item in sent] == [
        (to_group, "failed"),
        (to_person, "noAccount"),
    ]
