"""Calling the simulator's sending methods in tests: a valid body for each method, the call itself, and
reading the notifications an instance queued (pull mode)."""

from __future__ import annotations

from typing import Any

import httpx2

from tests.support.simulator import INSTANCE, INSTANCE_TOKEN

PERSON = "79001234567@c.us"
GROUP = "120363043968066561@g.us"

#: One valid request per sending method (method, body), in the order the tests send them.
VALID_SENDS: list[tuple[str, dict[str, Any]]] = [
    ("sendMessage", {"chatId": PERSON, "message": "Your order has shipped"}),
    (
        "sendFileByUrl",
        {"chatId": PERSON, "urlFile": "https://example.com/a.jpg", "fileName": "a.jpg", "caption": "a"},
    ),
    ("sendFileByUrl", {"chatId": GROUP, "urlFile": "https://example.com/r.pdf", "fileName": "report.pdf"}),
    (
        "sendLocation",
        {
            "chatId": PERSON,
            "latitude": 55.75,
            "longitude": 37.61,
            "nameLocation": "Office",
            "address": "Main st",
        },
    ),
    (
        "sendContact",
        {"chatId": PERSON, "contact": {"phoneContact": 79001234568, "firstName": "Ann", "company": "G"}},
    ),
    (
        "sendPoll",
        {"chatId": GROUP, "message": "Lunch?", "options": [{"optionName": "yes"}, {"optionName": "no"}]},
    ),
    (
        "sendInteractiveButtons",
        {
            "chatId": PERSON,
            "header": "Order",
            "body": "Your code",
            "footer": "Thanks",
            "buttons": [
                {"type": "copy", "buttonId": "1", "buttonText": "Copy", "copyCode": "ABC"},
                {"type": "call", "buttonId": "2", "buttonText": "Call", "phoneNumber": "79001234568"},
                {"type": "url", "buttonId": "3", "buttonText": "Open", "url": "https://example.com"},
            ],
        },
    ),
    (
        "sendInteractiveButtonsReply",
        {"chatId": PERSON, "body": "Pick one", "buttons": [{"buttonId": "a", "buttonText": "A"}]},
    ),
    (
        "sendMessage",
        {"chatId": GROUP, "message": "see https://example.com", "quotedMessageId": "BAE5F4886F6F2D05"},
    ),
    ("sendMessage", {"chatId": PERSON, "message": "docs at https://green-api.com"}),
]

#: The typeMessage each of VALID_SENDS is reported with, in the same order.
EXPECTED_TYPES = [
    "textMessage",
    "imageMessage",
    "documentMessage",
    "locationMessage",
    "contactMessage",
    "pollMessage",
    "interactiveButtons",
    "interactiveButtonsReply",
    "quotedMessage",
    "extendedTextMessage",
]


def api(url: str, method: str, instance: int = INSTANCE, token: str = INSTANCE_TOKEN) -> str:
    return f"{url}/waInstance{instance}/{method}/{token}"


def send(url: str, method: str, body: object) -> httpx2.Response:
    """One call of a sending method (or any POST method) on the test instance."""
    return httpx2.post(api(url, method), json=body, timeout=10)


def send_ok(url: str, method: str, body: object) -> str:
    """A call that must be accepted; the idMessage it answered."""
    response = send(url, method, body)
    assert response.status_code == 200, response.text
    return str(response.json()["idMessage"])


def receive_all(url: str, count: int) -> list[dict[str, Any]]:
    """The next ``count`` notifications of the test instance (pull mode), each deleted once read."""
    bodies: list[dict[str, Any]] = []
    for _ in range(count):
        answer = httpx2.get(api(url, "receiveNotification"), params={"receiveTimeout": 5}, timeout=10).json()
        assert answer is not None, f"only {len(bodies)} of {count} notifications arrived"
        bodies.append(answer["body"])
        httpx2.delete(
            f"{api(url, 'deleteNotification')}/{answer['receiptId']}", timeout=10
        ).raise_for_status()
    return bodies


def switch_on(url: str, *settings: str) -> None:
    response = httpx2.post(api(url, "setSettings"), json=dict.fromkeys(settings, "yes"), timeout=10)
    assert response.json() == {"saveSettings": True}
