"""Ingress -> real Redis -> real RQ burst worker: every accepted notification ends in exactly one outcome."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import orjson
import pytest
from redis import Redis
from starlette.testclient import TestClient

from greenq.core import keys
from greenq.core.contract import Envelope, NotificationQueue, notification_queue
from greenq.core.deadletters.store import DeadLetterStore
from greenq.core.logs import JsonFormatter
from greenq.core.outcomes import Outcome
from greenq.core.settings import IngressSettings
from greenq.ingress.app import create_app
from tests.conftest import TOKEN, DrainFn, load_sample, mutate, sample_paths
from tests.support.metrics import outcome_counts
from tests.support.routers import calls

WEBHOOK = "/green-api/webhook/"


@pytest.fixture
def client(ingress_settings: IngressSettings, redis_conn: Redis) -> Iterator[TestClient]:
    with TestClient(create_app(ingress_settings), client=("127.0.0.1", 1)) as test_client:
        yield test_client


def post(client: TestClient, body: bytes | dict[str, Any]) -> None:
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    response = client.post(WEBHOOK, content=content, headers={"Authorization": TOKEN})
    assert response.status_code == 200, response.text


def expected_type(path: Path) -> str:
    stem = path.stem.split("__")[0]
    return "incomingMessageReceived" if stem == "receiveNotification-response" else stem


@pytest.mark.parametrize("path", sample_paths(), ids=lambda p: p.stem)
def test_every_sample_is_handled_by_the_default_sinks(
    client: TestClient, redis_conn: Redis, drain: DrainFn, path: Path
) -> None:
    post(client, path.read_bytes())

    runtime = drain()

    type_webhook = expected_type(path)
    assert outcome_counts(runtime.registry) == {(type_webhook, "handled"): 1}
    [(_, fields)] = cast(
        list[tuple[bytes, dict[bytes, bytes]]], redis_conn.xrange(keys.event_stream(type_webhook))
    )
    assert fields[b"body"] == path.read_bytes()
    assert DeadLetterStore(redis_conn).size() == 0


def test_samples_without_a_handler_end_unhandled(client: TestClient, drain: DrainFn) -> None:
    for path in sample_paths():
        post(client, path.read_bytes())

    # Two samples are the same documented notification (plain and pull-wrapped): keep both countable.
    runtime = drain(router="tests.support.routers:empty_router", dedup_window_seconds=0)

    counts = outcome_counts(runtime.registry)
    assert {outcome for _, outcome in counts} == {"unhandled"}
    assert sum(counts.values()) == len(sample_paths())


MUTATIONS = [
    ("instanceData", ..., "instanceData"),
    ("senderData.chatId", ..., "chatId"),
    ("messageData.textMessageData", ..., "textMessageData"),
    ("timestamp", "yesterday", "timestamp"),
    ("instanceData.idInstance", "1234", "idInstance"),
    ("messageData.textMessageData.textMessage", 42, "textMessage"),
    ("typeWebhook", ..., "typeWebhook"),
]


@pytest.mark.parametrize(("path", "value", "named"), MUTATIONS, ids=[m[0] for m in MUTATIONS])
def test_mutated_sample_is_dead_lettered_as_invalid_with_a_reason(
    client: TestClient, redis_conn: Redis, drain: DrainFn, path: str, value: object, named: str
) -> None:
    body = mutate(load_sample("incomingMessageReceived__textMessage.json"), path, value)
    post(client, body)

    runtime = drain()

    [letter] = DeadLetterStore(redis_conn).entries()
    assert letter.outcome is Outcome.INVALID
    assert any(named in reason for reason in letter.reasons), letter.reasons
    assert orjson.loads(letter.envelope.body) == body
    assert letter.failed_at > 0
    assert sum(outcome_counts(runtime.registry).values()) == 1
    assert set(outcome_counts(runtime.registry)) <= {
        ("incomingMessageReceived", "invalid"),
        ("other", "invalid"),
    }


def test_unknown_type_is_kept_for_the_operator(
    client: TestClient, redis_conn: Redis, drain: DrainFn, caplog: pytest.LogCaptureFixture
) -> None:
    body = {**load_sample("incomingCall__default.json"), "typeWebhook": "brandNewWebhook"}
    post(client, body)

    with caplog.at_level(logging.WARNING, logger="greenq.worker"):
        runtime = drain()

    [letter] = DeadLetterStore(redis_conn).entries()
    assert letter.outcome is Outcome.UNKNOWN_TYPE
    assert letter.type_webhook == "brandNewWebhook"
    assert outcome_counts(runtime.registry) == {("other", "unknown_type"): 1}
    [record] = [
        r for r in caplog.records if r.levelno == logging.WARNING and "unknown_type" in r.getMessage()
    ]
    assert record.fields["typeWebhook"] == "brandNewWebhook"  # type: ignore[attr-defined]


def test_failing_handler_is_retried_then_dead_lettered_without_rerunning_its_neighbours(
    client: TestClient, redis_conn: Redis, drain: DrainFn
) -> None:
    calls.clear()
    text = load_sample("incomingMessageReceived__textMessage.json")
    post(client, text)
    post(client, load_sample("incomingCall__default.json"))

    runtime = drain(router="tests.support.routers:flaky_router", max_retries=2)

    message_id = text["idMessage"]
    # First try runs both handlers; each of the 2 retries re-runs only the broken one.
    assert calls.count(f"ok:{message_id}") == 1
    assert calls.count(f"broken:{message_id}") == 3
    assert calls.count("ok:104179EDB7F5328988D8834107EEBE50") == 1
    [letter] = DeadLetterStore(redis_conn).entries()
    assert letter.outcome is Outcome.FAILED
    assert letter.envelope.attempt == 3
    assert letter.reasons == ("handler always-broken raised RuntimeError: downstream is down",)
    assert outcome_counts(runtime.registry) == {
        ("incomingMessageReceived", "failed"): 1,
        ("incomingCall", "handled"): 1,
    }


def test_every_accepted_request_has_exactly_one_outcome(
    client: TestClient, redis_conn: Redis, drain: DrainFn
) -> None:
    bodies: list[bytes | dict[str, Any]] = [path.read_bytes() for path in sample_paths()]
    bodies += [mutate(load_sample("deviceInfo__default.json"), "deviceData")]
    bodies += [{**load_sample("incomingBlock__default.json"), "typeWebhook": "somethingNew"}]
    for body in bodies:
        post(client, body)

    runtime = drain()

    counts = outcome_counts(runtime.registry)
    assert sum(counts.values()) == len(bodies)
    # The pull-wrapped sample is the plain textMessage sample again: one of the two is a duplicate.
    assert counts[("incomingMessageReceived", "duplicate")] == 1
    assert counts[("other", "unknown_type")] == 1
    assert counts[("deviceInfo", "invalid")] == 1
    assert DeadLetterStore(redis_conn).size() == 2
    assert notification_queue(redis_conn).count == 0


def test_one_job_can_carry_a_batch_with_independent_outcomes(redis_conn: Redis, drain: DrainFn) -> None:
    good = Envelope(body=load_sample_text("incomingMessageReceived__textMessage.json"), source="poll")
    broken = Envelope(body="{not json", source="poll")
    unknown = Envelope(body='{"typeWebhook": "fromTheFuture"}', source="poll")
    NotificationQueue(redis_conn).enqueue([good, broken, unknown])

    runtime = drain()

    assert outcome_counts(runtime.registry) == {
        ("incomingMessageReceived", "handled"): 1,
        ("other", "invalid"): 1,
        ("other", "unknown_type"): 1,
    }
    assert {letter.outcome for letter in DeadLetterStore(redis_conn).entries()} == {
        Outcome.INVALID,
        Outcome.UNKNOWN_TYPE,
    }


def test_malformed_envelope_is_dead_lettered_not_lost(redis_conn: Redis, drain: DrainFn) -> None:
    queue = NotificationQueue(redis_conn).rq_queue
    queue.enqueue(keys.JOB_FUNCTION, args=([{"version": 99, "body": "{}"}],))

    drain()

    [letter] = DeadLetterStore(redis_conn).entries()
    assert letter.outcome is Outcome.INVALID
    assert "unsupported envelope version 99" in letter.reasons[0]


def test_pull_api_wrapper_is_unwrapped(redis_conn: Redis, drain: DrainFn) -> None:
    body = load_sample_text("receiveNotification-response__incomingMessageReceived_textMessage.json")
    NotificationQueue(redis_conn).enqueue([Envelope(body=body, source="poll")])

    runtime = drain()

    assert outcome_counts(runtime.registry) == {("incomingMessageReceived", "handled"): 1}


def test_notification_log_record_is_one_json_line_with_identity_and_data(
    client: TestClient, drain: DrainFn, caplog: pytest.LogCaptureFixture
) -> None:
    post(client, load_sample("outgoingMessageStatus__sent-sendByApi.json"))

    with caplog.at_level(logging.INFO, logger="greenq.worker"):
        drain()

    [record] = [r for r in caplog.records if r.getMessage() == "notification handled"]
    line = orjson.loads(JsonFormatter().format(record))
    assert line["level"] == "INFO"
    assert line["timestamp"]
    assert line["typeWebhook"] == "outgoingMessageStatus"
    assert line["idInstance"] == 1101000002
    assert line["idMessage"] == "ECE6BBEA514B66872790C3D9D52C5C19"
    assert line["outcome"] == "handled"
    assert line["notification"]["status"] == "sent"
    assert TOKEN not in caplog.text


@pytest.mark.parametrize(
    ("body", "level"),
    [
        ({"typeWebhook": "neverSeenBefore"}, logging.WARNING),
        ({"typeWebhook": "stateInstanceChanged"}, logging.ERROR),
    ],
    ids=["unknown-warning", "invalid-error"],
)
def test_outcome_log_levels_follow_the_guide(
    client: TestClient, drain: DrainFn, caplog: pytest.LogCaptureFixture, body: dict[str, Any], level: int
) -> None:
    post(client, body)

    with caplog.at_level(logging.DEBUG, logger="greenq.worker"):
        drain()

    [record] = [r for r in caplog.records if r.getMessage().startswith("notification ")]
    assert record.levelno == level


def test_unhandled_is_logged_at_debug(
    client: TestClient, drain: DrainFn, caplog: pytest.LogCaptureFixture
) -> None:
    post(client, load_sample("statusInstanceChanged__default.json"))

    with caplog.at_level(logging.DEBUG, logger="greenq.worker"):
        drain(router="tests.support.routers:empty_router")

    [record] = [r for r in caplog.records if r.getMessage() == "notification unhandled"]
    assert record.levelno == logging.DEBUG


def load_sample_text(name: str) -> str:
    return (Path(__file__).parent / "samples" / name).read_text()
