"""Deduplication with a real redis-server and real burst workers: resends run handlers once."""

from __future__ import annotations

from typing import cast

import pytest
from redis import Redis

from greenq.core import keys
from greenq.core.contract import Envelope, NotificationQueue
from greenq.workers.dedup import identity
from greenq.workers.results import Decided, Settled, Valid
from greenq.workers.runner import WorkerRuntime
from tests.conftest import DrainFn, load_sample, mutate

STATUS = load_sample("outgoingMessageStatus__sent-sendByApi.json")
TEXT = load_sample("incomingMessageReceived__textMessage.json")


def envelope(body: dict[str, object], **overrides: object) -> Envelope:
    import orjson

    return Envelope(body=orjson.dumps(body).decode(), source="webhook", **overrides)  # type: ignore[arg-type]


def identity_of(data: dict[str, object]) -> str | None:
    import orjson

    return identity(data, orjson.dumps(data).decode())


def stream_length(redis: Redis, type_webhook: str) -> int:
    return int(redis.xlen(keys.event_stream(type_webhook)))


def outcomes(runtime: WorkerRuntime) -> dict[str, float]:
    totals: dict[str, float] = {}
    for family in runtime.registry.collect():
        for sample in family.samples:
            if sample.name == "greenq_notifications_total":
                outcome = sample.labels["outcome"]
                totals[outcome] = totals.get(outcome, 0) + sample.value
    return totals


def test_a_resent_notification_runs_its_handlers_once(redis_conn: Redis, drain: DrainFn) -> None:
    queue = NotificationQueue(redis_conn)
    queue.enqueue([envelope(TEXT)])
    first = drain()
    queue.enqueue([envelope(TEXT)])  # GREEN API resends after a lost 200

    second = drain()

    assert outcomes(first) == {"handled": 1}
    assert outcomes(second) == {"duplicate": 1}
    assert stream_length(redis_conn, "incomingMessageReceived") == 1


def test_duplicates_inside_one_batch_are_caught(redis_conn: Redis, drain: DrainFn) -> None:
    NotificationQueue(redis_conn).enqueue([envelope(TEXT), envelope(TEXT), envelope(TEXT)])

    runtime = drain()

    assert outcomes(runtime) == {"handled": 1, "duplicate": 2}
    assert stream_length(redis_conn, "outgoingMessageStatus") == 0
    assert stream_length(redis_conn, "incomingMessageReceived") == 1


def test_status_changes_of_one_message_are_not_duplicates(redis_conn: Redis, drain: DrainFn) -> None:
    statuses = [mutate(STATUS, "status", status) for status in ("sent", "delivered", "read")]
    NotificationQueue(redis_conn).enqueue([envelope(body) for body in statuses])

    runtime = drain()

    assert outcomes(runtime) == {"handled": 3}
    assert stream_length(redis_conn, "outgoingMessageStatus") == 3


@pytest.mark.parametrize(
    "change",
    [
        ("idMessage", "OTHER"),
        ("instanceData.idInstance", 1101000099),
        ("senderData.chatId", "70000000000@c.us"),
        ("typeWebhook", "outgoingMessageReceived"),
        ("messageData.typeMessage", "extendedTextMessage"),
    ],
    ids=["id", "instance", "chat", "direction", "typeMessage"],
)
def test_identity_changes_with_each_identifying_field(change: tuple[str, object]) -> None:
    assert identity_of(mutate(TEXT, *change)) != identity_of(TEXT)


@pytest.mark.parametrize(
    "change",
    [("timestamp", 1588091581), ("senderData.sender", "70000000000@c.us")],
    ids=["timestamp", "sender"],
)
def test_a_message_is_its_chat_and_id_not_its_journal_less_details(change: tuple[str, object]) -> None:
    """A copy rebuilt from GREEN API's journal must be a duplicate of the real notification."""
    assert identity_of(mutate(TEXT, *change)) == identity_of(TEXT)
    sent_by_phone = mutate(TEXT, "typeWebhook", "outgoingMessageReceived")
    assert identity_of(mutate(sent_by_phone, "typeWebhook", "outgoingAPIMessageReceived")) == identity_of(
        sent_by_phone
    )
    assert identity_of(mutate(STATUS, "timestamp", 1588091581)) != identity_of(STATUS)


def test_identity_ignores_fields_that_do_not_identify() -> None:
    assert identity_of(mutate(TEXT, "senderData.senderName", "renamed")) == identity_of(TEXT)


def test_a_zero_window_turns_deduplication_off(redis_conn: Redis, drain: DrainFn) -> None:
    NotificationQueue(redis_conn).enqueue([envelope(TEXT), envelope(TEXT)])

    runtime = drain(dedup_window_seconds=0)

    assert outcomes(runtime) == {"handled": 2}


def test_markers_expire_after_the_window(redis_conn: Redis, drain: DrainFn) -> None:
    NotificationQueue(redis_conn).enqueue([envelope(TEXT)])

    drain(dedup_window_seconds=3600)

    [key] = cast(list[bytes], redis_conn.keys(f"{keys.DEDUP_PREFIX}*"))
    assert 3590 < int(redis_conn.ttl(key)) <= 3600


def test_replays_and_retries_are_not_treated_as_duplicates(redis_conn: Redis, drain: DrainFn) -> None:
    queue = NotificationQueue(redis_conn)
    queue.enqueue([envelope(TEXT)])
    drain()
    queue.enqueue([Envelope(body=envelope(TEXT).body, source="replay")])
    queue.enqueue([envelope(TEXT, attempt=2)])

    runtime = drain()

    assert outcomes(runtime) == {"handled": 2}


def test_items_expose_their_outcome_to_tools(redis_conn: Redis, drain: DrainFn) -> None:
    runtime = drain()

    [item] = runtime.processor.process_items([envelope(TEXT).to_wire()])

    assert isinstance(item, Settled)
    assert isinstance(item.read, Valid)
    assert isinstance(item.decision, Decided)
    assert item.decision.outcome.value == "handled"
