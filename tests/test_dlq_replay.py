"""``greenq dlq replay`` against a real redis-server: re-enqueued, re-validated, handled; kept on errors."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from redis import Redis

from greenq.core import keys
from greenq.core.contract import NotificationQueue
from greenq.core.contract.partitioned import partition_of_envelope
from greenq.core.deadletters import DeadLetterStore
from greenq.core.outcomes import Outcome
from greenq.core.settings import CommonSettings
from tests.conftest import DrainFn, load_sample, mutate
from tests.support.full_redis import full_redis
from tests.support.metrics import outcome_counts
from tests.support.ops_cli import TEXT, Cli, enqueue, letter
from tests.support.ordering import queued_functions, waiting_envelopes
from tests.support.sink_routers import fixed_calls

TEXT_ID = "F7AEC1B7086ECDC7E6E45923F5EDB825"
#: The partition count of a command that sets none.
PARTITIONS: int = CommonSettings.model_fields["partitions"].default


@pytest.fixture(autouse=True)
def _no_leftover_calls() -> Iterator[None]:
    yield
    fixed_calls.clear()


def test_replay_of_a_failed_entry_drains_it_once_the_handler_is_fixed(
    cli: Cli, redis_conn: Redis, drain: DrainFn
) -> None:
    request_id = enqueue(redis_conn, TEXT)
    drain(router="tests.support.sink_routers:broken_router", max_retries=1)
    store = DeadLetterStore(redis_conn)
    [failed] = store.entries()
    assert (failed.outcome, failed.envelope.attempt) == (Outcome.FAILED, 2)

    result = cli("dlq", "replay", str(failed.entry_id))

    assert result.code == 0, result.err
    assert result.lines() == ["replayed 1"]
    assert store.size() == 0
    # Ordered mode (the default): the replay waits in its chat's partition stream, with its drain job.
    assert queued_functions(redis_conn) == [keys.DRAIN_FUNCTION]
    [replayed] = waiting_envelopes(redis_conn, PARTITIONS)
    assert (replayed.source, replayed.attempt, replayed.body) == ("replay", 1, TEXT)
    assert replayed.request_id == request_id
    assert replayed.pending_handlers == ("sink",)

    fixed_calls.clear()
    runtime = drain(router="tests.support.sink_routers:fixed_router")

    assert fixed_calls == [TEXT_ID]
    assert outcome_counts(runtime.registry) == {("incomingMessageReceived", "handled"): 1}
    assert store.size() == 0


def test_replay_revalidates_with_the_current_schemas(cli: Cli, redis_conn: Redis, drain: DrainFn) -> None:
    store = DeadLetterStore(redis_conn)
    # Dead-lettered by an older, stricter schema: the body is valid under today's schemas.
    fixed_by_schema = store.add(letter(reason="$.senderData.chatName: old schema refused it"))
    # Still invalid today.
    enqueue(redis_conn, mutate(load_sample("incomingMessageReceived__textMessage.json"), "senderData.chatId"))
    drain()
    assert store.size() == 2

    result = cli("dlq", "replay", "--outcome", "invalid")

    assert result.lines() == ["replayed 2"]
    assert store.size() == 0
    runtime = drain()
    assert outcome_counts(runtime.registry) == {
        ("incomingMessageReceived", "handled"): 1,
        ("incomingMessageReceived", "invalid"): 1,
    }
    [again] = store.entries()
    assert again.entry_id != fixed_by_schema
    assert again.envelope.source == "replay"
    assert any("chatId" in reason for reason in again.reasons)


def test_replay_keeps_the_entry_when_redis_refuses_the_transaction(cli: Cli, redis_conn: Redis) -> None:
    store = DeadLetterStore(redis_conn)
    first = store.add(letter())
    second = store.add(letter())
    # Redis out of memory (maxmemory-policy noeviction): every write in the MULTI is refused, EXEC aborts.
    with full_redis(redis_conn):
        result = cli("dlq", "replay", "--all")

    assert result.code == 1
    assert result.lines() == ["replayed 0"]
    assert f"replay stopped at {first} (kept)" in result.err
    assert [entry.entry_id for entry in store.entries()] == [first, second]
    assert waiting_envelopes(redis_conn, PARTITIONS) == []


@pytest.mark.parametrize("ordering", ["partitioned", "jobs"])
def test_replay_writes_the_entry_back_when_a_command_inside_exec_fails(
    cli: Cli, redis_conn: Redis, ordering: str
) -> None:
    store = DeadLetterStore(redis_conn)
    first = store.add(letter(reason="first"))
    second = store.add(letter(reason="second"))
    # The key the replay writes to holds a string: the XADD to the chat's partition stream (or, with the
    # jobs opt-out, RPUSH to RQ's queue) fails with WRONGTYPE inside EXEC, while the XDEL next to it runs.
    if ordering == "partitioned":
        partition = partition_of_envelope(letter().envelope, PARTITIONS)
        redis_conn.set(keys.partition_stream_key(partition), "not a stream")
    else:
        redis_conn.set(NotificationQueue(redis_conn).rq_queue.key, "not a list")

    result = cli("dlq", "replay", "--all", env={"GREENQ_ORDERING": ordering})

    assert result.code == 1
    assert result.lines() == ["replayed 0"]
    assert f"replay stopped at {first} (kept): ResponseError" in result.err
    entries = store.entries()
    assert [entry.reasons for entry in entries] == [("second",), ("first",)]
    assert entries[0].entry_id == second
    assert f"kept as {entries[1].entry_id}" in result.err
    assert (entries[1].outcome, entries[1].envelope.body) == (Outcome.INVALID, TEXT)


def test_replay_with_limit_takes_the_oldest(cli: Cli, redis_conn: Redis) -> None:
    store = DeadLetterStore(redis_conn)
    ids = [store.add(letter()) for _ in range(3)]

    assert cli("dlq", "replay", "--all", "--limit", "2").lines() == ["replayed 2"]

    assert [entry.entry_id for entry in store.entries()] == ids[2:]
    assert len(waiting_envelopes(redis_conn, PARTITIONS)) == 2


def test_replay_needs_an_unambiguous_selection(cli: Cli, redis_conn: Redis) -> None:
    entry_id = DeadLetterStore(redis_conn).add(letter())

    nothing = cli("dlq", "replay")
    both = cli("dlq", "replay", entry_id, "--all")
    missing = cli("dlq", "replay", "1-0", entry_id)

    assert (nothing.code, both.code) == (2, 2)
    assert "say which dead letters" in nothing.err
    assert missing.code == 1
    assert missing.lines() == ["replayed 1", "not found 1: 1-0"]
