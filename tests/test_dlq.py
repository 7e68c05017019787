"""Dead letters through the operator commands, against a real redis-server and real RQ burst workers."""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from redis import Redis

from greenq.core import keys
from greenq.core.contract import Envelope
from greenq.core.deadletters import replay as dlq
from greenq.core.deadletters.filter import DeadLetterFilter, TimeSpecError, parse_when
from greenq.core.deadletters.store import DeadLetter, DeadLetterStore, UnreadableDeadLetter
from greenq.core.jobqueue import NotificationQueue
from greenq.core.notification import Notification
from greenq.core.outcomes import Outcome
from greenq.local.redis_server import LocalRedis
from greenq.workers.context import HandlerContext
from greenq.workers.router import Router
from tests.conftest import SAMPLES_DIR, DrainFn, load_sample, mutate
from tests.support.full_redis import full_redis
from tests.support.metrics import outcome_counts
from tests.support.ops_cli import TEXT, Cli, Result, letter
from tests.support.processes import run_greenq, subprocess_env

TEXT_ID = "F7AEC1B7086ECDC7E6E45923F5EDB825"
STATUS = (SAMPLES_DIR / "outgoingMessageStatus__sent-sendByApi.json").read_text()


# GREENQ_ROUTER targets: the same handler name broken, then fixed.
broken_router = Router()
fixed_router = Router()
fixed_calls: list[str] = []


@broken_router.on(name="sink")
def broken_sink(notification: Notification, ctx: HandlerContext) -> None:
    raise RuntimeError("downstream is down")


@fixed_router.on(name="sink")
def fixed_sink(notification: Notification, ctx: HandlerContext) -> None:
    fixed_calls.append(notification.id_message or notification.type_webhook)


def enqueue(redis_conn: Redis, body: str | dict[str, Any]) -> str:
    text = body if isinstance(body, str) else orjson.dumps(body).decode()
    envelope = Envelope(body=text, source="webhook", token_id="instance-a")
    NotificationQueue(redis_conn).enqueue([envelope])
    return envelope.request_id


def add_at(redis_conn: Redis, when: datetime, letter: DeadLetter) -> str:
    """A dead letter written at ``when`` (stream ids are millisecond timestamps)."""
    entry_id = f"{int(when.timestamp() * 1000)}-0"
    redis_conn.xadd(keys.DEAD_LETTER_STREAM, letter.to_fields(), id=entry_id)  # type: ignore[arg-type]
    return entry_id


@pytest.fixture
def three_kinds(redis_conn: Redis, drain: DrainFn) -> dict[str, str]:
    """One real dead letter per outcome, made by real workers; maps outcome -> entry id."""
    enqueue(redis_conn, mutate(load_sample("incomingMessageReceived__textMessage.json"), "timestamp", "x"))
    enqueue(redis_conn, {**load_sample("incomingCall__default.json"), "typeWebhook": "brandNewWebhook"})
    drain()
    enqueue(redis_conn, STATUS)
    drain(router="tests.test_dlq:broken_router", max_retries=0)
    ids = {entry.outcome.value: str(entry.entry_id) for entry in DeadLetterStore(redis_conn).entries()}
    assert set(ids) == {"invalid", "unknown_type", "failed"}
    return ids


def listed_ids(result: Result) -> list[str]:
    assert result.code == 0, result.err
    return [line.split()[0] for line in result.lines()]


# --- list ----------------------------------------------------------------------------------------------


def test_list_prints_one_line_per_entry_with_id_time_outcome_type_instance_and_reason(
    cli: Cli, three_kinds: dict[str, str]
) -> None:
    result = cli("dlq", "list")

    assert listed_ids(result) == [three_kinds["invalid"], three_kinds["unknown_type"], three_kinds["failed"]]
    invalid, unknown, failed = (line.split(maxsplit=5) for line in result.lines())
    assert invalid[2:5] == ["invalid", "incomingMessageReceived", "1234"]
    assert "$.timestamp" in invalid[5]
    assert unknown[2:5] == ["unknown_type", "brandNewWebhook", "1234"]
    assert failed[2:5] == ["failed", "outgoingMessageStatus", "1101000002"]
    assert failed[5] == "handler sink raised RuntimeError: downstream is down"
    stamp = datetime.fromisoformat(invalid[1])
    assert abs(stamp.timestamp() - int(three_kinds["invalid"].split("-")[0]) / 1000) < 1


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("--outcome", "invalid"), ["invalid"]),
        (("--outcome", "invalid", "--outcome", "failed"), ["invalid", "failed"]),
        (("--type", "brandNewWebhook"), ["unknown_type"]),
        (("--instance", "1101000002"), ["failed"]),
        (("--instance", "1234"), ["invalid", "unknown_type"]),
        (("--instance", "1234", "--outcome", "failed"), []),
        (("--limit", "2"), ["invalid", "unknown_type"]),
    ],
)
def test_list_filters(
    cli: Cli, three_kinds: dict[str, str], args: tuple[str, ...], expected: list[str]
) -> None:
    assert listed_ids(cli("dlq", "list", *args)) == [three_kinds[outcome] for outcome in expected]


def test_list_filters_by_time_range_relative_and_iso(cli: Cli, redis_conn: Redis) -> None:
    now = datetime.now(UTC)
    old = add_at(redis_conn, now - timedelta(hours=3), letter())
    middle = add_at(redis_conn, now - timedelta(minutes=90), letter())
    recent = add_at(redis_conn, now - timedelta(minutes=10), letter())

    assert listed_ids(cli("dlq", "list", "--since", "2h")) == [middle, recent]
    assert listed_ids(cli("dlq", "list", "--until", "1h")) == [old, middle]
    window = (
        "--since",
        (now - timedelta(hours=2)).isoformat(),
        "--until",
        (now - timedelta(hours=1)).isoformat(),
    )
    assert listed_ids(cli("dlq", "list", *window)) == [middle]
    naive_utc = (now - timedelta(minutes=20)).replace(tzinfo=None).isoformat()
    assert listed_ids(cli("dlq", "list", "--since", naive_utc)) == [recent]


def test_list_json_lines(cli: Cli, three_kinds: dict[str, str]) -> None:
    result = cli("dlq", "list", "--json", "--outcome", "failed")

    [entry] = [orjson.loads(line) for line in result.lines()]
    assert entry["id"] == three_kinds["failed"]
    assert entry["idInstance"] == 1101000002
    assert entry["typeWebhook"] == "outgoingMessageStatus"


def test_bad_time_is_a_usage_error(cli: Cli) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli("dlq", "list", "--since", "yesterday-ish")
    assert exit_info.value.code == 2


# --- show ----------------------------------------------------------------------------------------------


def test_show_prints_every_field_and_the_full_body_as_pretty_json(
    cli: Cli, redis_conn: Redis, drain: DrainFn
) -> None:
    body = mutate(load_sample("incomingMessageReceived__textMessage.json"), "instanceData.idInstance", "1234")
    request_id = enqueue(redis_conn, body)
    drain()
    [entry] = DeadLetterStore(redis_conn).entries()

    result = cli("dlq", "show", str(entry.entry_id))

    assert result.code == 0, result.err
    head, _, pretty_body = result.out.partition("\nbody\n")
    assert orjson.loads(pretty_body) == body
    assert '\n  "instanceData": {\n' in pretty_body  # indented, not one line
    for expected in (
        f"id           {entry.entry_id}",
        "outcome      invalid",
        "typeWebhook  incomingMessageReceived",
        "  - $.instanceData.idInstance: '1234' is not of type 'integer'",
        f"  request id   {request_id}",
        "  token name   instance-a",
        "  source       webhook",
        "  attempt      1",
    ):
        assert expected in head, head


def test_show_json_keeps_the_body_byte_for_byte(cli: Cli, redis_conn: Redis) -> None:
    quirky = '{"typeWebhook": "incomingCall", "a": 1, "a": 2, "n": 1.50}'
    entry_id = DeadLetterStore(redis_conn).add(letter(body=quirky))

    shown = orjson.loads(cli("dlq", "show", entry_id, "--json").out)

    assert shown["envelope"]["body"] == quirky
    assert shown["reasons"] == ["old reason"]


def test_show_and_list_a_body_that_is_not_utf8_as_base64_of_its_exact_bytes(
    cli: Cli, redis_conn: Redis
) -> None:
    raw = b'{"typeWebhook": "\xff\xfe"}'
    envelope = Envelope.of_bytes(raw, "webhook", token_id="instance-a")
    entry_id = DeadLetterStore(redis_conn).add(DeadLetter(Outcome.INVALID, ("not UTF-8",), envelope))

    shown = cli("dlq", "show", entry_id)
    listed = cli("dlq", "list", "--outcome", "invalid")

    head, _, body = shown.out.partition("\nbody (base64: the received bytes are not UTF-8)\n")
    assert base64.b64decode(body.strip()) == raw
    assert f"  body         {len(raw)} bytes, stored as base64" in head
    assert entry_id in listed.out


def test_show_unknown_and_malformed_ids(cli: Cli) -> None:
    missing = cli("dlq", "show", "1-0")
    assert missing.code == 1
    assert "no dead letter 1-0" in missing.err
    with pytest.raises(SystemExit):
        cli("dlq", "show", "not-an-id")


# --- replay --------------------------------------------------------------------------------------------


def test_replay_of_a_failed_entry_drains_it_once_the_handler_is_fixed(
    cli: Cli, redis_conn: Redis, drain: DrainFn
) -> None:
    request_id = enqueue(redis_conn, TEXT)
    drain(router="tests.test_dlq:broken_router", max_retries=1)
    store = DeadLetterStore(redis_conn)
    [failed] = store.entries()
    assert (failed.outcome, failed.envelope.attempt) == (Outcome.FAILED, 2)

    result = cli("dlq", "replay", str(failed.entry_id))

    assert result.code == 0, result.err
    assert result.lines() == ["replayed 1"]
    assert store.size() == 0
    [job] = NotificationQueue(redis_conn).rq_queue.get_jobs()
    [wire] = job.args[0]
    replayed = Envelope.from_wire(wire)
    assert (replayed.source, replayed.attempt, replayed.body) == ("replay", 1, TEXT)
    assert replayed.request_id == request_id
    assert replayed.pending_handlers == ("sink",)

    fixed_calls.clear()
    runtime = drain(router="tests.test_dlq:fixed_router")

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
    assert NotificationQueue(redis_conn).rq_queue.count == 0


def test_replay_writes_the_entry_back_when_a_command_inside_exec_fails(cli: Cli, redis_conn: Redis) -> None:
    store = DeadLetterStore(redis_conn)
    first = store.add(letter(reason="first"))
    second = store.add(letter(reason="second"))
    # The queue key holds a string: RPUSH fails with WRONGTYPE inside EXEC, while the XDEL next to it runs.
    redis_conn.set(NotificationQueue(redis_conn).rq_queue.key, "not a list")

    result = cli("dlq", "replay", "--all")

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
    assert NotificationQueue(redis_conn).rq_queue.count == 2


def test_replay_needs_an_unambiguous_selection(cli: Cli, redis_conn: Redis) -> None:
    entry_id = DeadLetterStore(redis_conn).add(letter())

    nothing = cli("dlq", "replay")
    both = cli("dlq", "replay", entry_id, "--all")
    missing = cli("dlq", "replay", "1-0", entry_id)

    assert (nothing.code, both.code) == (2, 2)
    assert "say which dead letters" in nothing.err
    assert missing.code == 1
    assert missing.lines() == ["replayed 1", "not found 1: 1-0"]


# --- purge ---------------------------------------------------------------------------------------------


def test_purge_without_a_terminal_or_yes_refuses_and_deletes_nothing(cli: Cli, redis_conn: Redis) -> None:
    store = DeadLetterStore(redis_conn)
    store.add(letter())

    for args in (("--all",), ("--outcome", "invalid")):
        result = cli("dlq", "purge", *args)
        assert result.code == 2
        assert "no terminal to confirm on; pass --yes" in result.err
    assert store.size() == 1


def test_purge_asks_on_a_terminal_and_only_yes_deletes(cli: Cli, redis_conn: Redis) -> None:
    store = DeadLetterStore(redis_conn)
    keep = store.add(letter(Outcome.FAILED))
    drop = [store.add(letter(Outcome.UNKNOWN_TYPE)) for _ in range(2)]

    declined = cli("dlq", "purge", "--outcome", "unknown_type", stdin="no\n")
    assert declined.code == 2
    assert "delete 2 dead letter(s) matching outcome=unknown_type? Type 'yes'" in declined.out
    assert store.size() == 3

    accepted = cli("dlq", "purge", "--outcome", "unknown_type", stdin="yes\n")
    assert accepted.code == 0
    assert accepted.out.endswith("purged 2\n")
    assert [entry.entry_id for entry in store.entries()] == [keep]
    assert not set(drop) & {entry.entry_id for entry in store.entries()}


def test_purge_with_yes_by_id_and_everything(cli: Cli, redis_conn: Redis) -> None:
    store = DeadLetterStore(redis_conn)
    ids = [store.add(letter()) for _ in range(4)]

    assert cli("dlq", "purge", ids[0], "--yes").lines() == ["purged 1"]
    assert cli("dlq", "purge", "--all", "--yes").lines() == ["purged 3"]
    assert store.size() == 0
    assert cli("dlq", "purge", "--all", "--yes").lines() == ["purged 0 (the dead-letter stream is empty)"]


def test_purge_refusal_through_the_real_command(redis_server: LocalRedis, redis_conn: Redis) -> None:
    DeadLetterStore(redis_conn).add(letter())
    result = run_greenq(["dlq", "purge", "--all"], subprocess_env(redis_server))

    assert result.returncode == 2, result.stderr
    assert "refusing to delete ALL 1 dead letters" in result.stderr
    assert DeadLetterStore(redis_conn).size() == 1


# --- retention -----------------------------------------------------------------------------------------


@pytest.fixture
def aged(redis_conn: Redis) -> dict[str, str]:
    now = datetime.now(UTC)
    return {
        age: add_at(redis_conn, now - delta, letter())
        for age, delta in {
            "40d": timedelta(days=40),
            "31d": timedelta(days=31),
            "29d": timedelta(days=29),
            "8d": timedelta(days=8),
            "1h": timedelta(hours=1),
        }.items()
    }


def remaining(redis_conn: Redis) -> list[str | None]:
    return [entry.entry_id for entry in DeadLetterStore(redis_conn).entries()]


def test_trim_removes_only_entries_older_than_retention_and_logs_the_count(
    redis_conn: Redis, aged: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="greenq.core.deadletters.replay"):
        removed = dlq.trim_dead_letters(redis_conn, retention_days=30)

    assert removed == 2
    assert remaining(redis_conn) == [aged["29d"], aged["8d"], aged["1h"]]
    [record] = [r for r in caplog.records if r.getMessage() == "dead letters trimmed"]
    assert record.levelno == logging.INFO
    assert record.fields["removed"] == 2  # type: ignore[attr-defined]
    assert record.fields["remaining"] == 3  # type: ignore[attr-defined]


def test_zero_retention_keeps_everything_and_says_so(
    redis_conn: Redis, aged: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="greenq.core.deadletters.replay"):
        assert dlq.trim_dead_letters(redis_conn, retention_days=0) == 0

    assert len(remaining(redis_conn)) == 5
    assert "kept forever" in caplog.text


def test_trim_command_uses_the_setting_or_an_override(
    cli: Cli, redis_conn: Redis, aged: dict[str, str]
) -> None:
    by_setting = cli("dlq", "trim", env={"GREENQ_DEAD_LETTER_RETENTION_DAYS": "35"})
    assert by_setting.lines() == ["trimmed 1 (older than 35 days)"]

    by_default = cli("dlq", "trim", env={"GREENQ_DEAD_LETTER_RETENTION_DAYS": "30"})
    assert by_default.lines() == ["trimmed 1 (older than 30 days)"]

    overridden = cli("dlq", "trim", "--retention-days", "7")
    assert overridden.lines() == ["trimmed 2 (older than 7 days)"]
    assert remaining(redis_conn) == [aged["1h"]]


def test_trim_command_logs_the_count_as_json(redis_server: LocalRedis, redis_conn: Redis) -> None:
    add_at(redis_conn, datetime.now(UTC) - timedelta(days=3), letter())
    env = subprocess_env(redis_server, GREENQ_DEAD_LETTER_RETENTION_DAYS="2")

    result = run_greenq(["dlq", "trim"], env)

    assert result.returncode == 0, result.stderr
    assert result.stdout == "trimmed 1 (older than 2 days)\n"
    [line] = [orjson.loads(line) for line in result.stderr.splitlines() if "trimmed" in line]
    assert (line["level"], line["removed"], line["retention_days"]) == ("INFO", 1, 2)


# --- the store's walks and unreadable entries ---------------------------------------------------------


def test_scan_pages_through_everything_and_ignores_entries_added_meanwhile(redis_conn: Redis) -> None:
    store = DeadLetterStore(redis_conn)
    ids = [store.add(letter()) for _ in range(10)]

    seen: list[str | None] = []
    for entry in store.scan(page_size=3):
        seen.append(entry.entry_id)
        store.add(letter())  # e.g. a replay that failed again while we walk

    assert seen == ids
    assert store.size() == 20


def test_an_unreadable_entry_is_named_and_can_be_purged(cli: Cli, redis_conn: Redis) -> None:
    store = DeadLetterStore(redis_conn)
    store.add(letter())
    raw_id = redis_conn.xadd(keys.DEAD_LETTER_STREAM, {"outcome": "exploded"})
    broken = raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id)
    with pytest.raises(UnreadableDeadLetter):
        list(store.scan())

    result = cli("dlq", "list")

    assert result.code == 1
    assert f"dead letter {broken} is unreadable" in result.err
    assert f"greenq dlq purge {broken}" in result.err
    assert cli("dlq", "purge", broken, "--yes").lines() == ["purged 1"]
    assert listed_ids(cli("dlq", "list")) == [entry.entry_id for entry in store.entries()]
    assert store.size() == 1


def test_outcome_counts_are_capped(redis_conn: Redis) -> None:
    store = DeadLetterStore(redis_conn)
    for outcome in (Outcome.INVALID, Outcome.INVALID, Outcome.FAILED):
        store.add(letter(outcome))

    assert store.outcome_counts(10) == ({"invalid": 2, "failed": 1}, 3)
    assert store.outcome_counts(2) == ({"invalid": 2}, 2)


# --- pure parsing --------------------------------------------------------------------------------------


def test_parse_when_accepts_ages_and_iso_times() -> None:
    now = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)

    assert parse_when("90m", now) == now - timedelta(minutes=90)
    assert parse_when("1.5h", now) == now - timedelta(minutes=90)
    assert parse_when("2w", now) == now - timedelta(days=14)
    assert parse_when("2024-04-30T10:00:00Z", now) == datetime(2024, 4, 30, 10, tzinfo=UTC)
    assert parse_when("2024-04-30T10:00:00+02:00", now) == datetime(2024, 4, 30, 8, tzinfo=UTC)
    with pytest.raises(TimeSpecError):
        parse_when("3 fortnights", now)


def test_filter_maps_time_to_stream_ids_and_describes_itself() -> None:
    since = datetime(2024, 5, 1, tzinfo=UTC)
    criteria = DeadLetterFilter(outcomes=frozenset({"failed"}), id_instance=7, since=since)

    assert criteria.id_range() == (str(int(since.timestamp() * 1000)), "+")
    assert criteria.describe() == "outcome=failed instance=7 since=2024-05-01T00:00:00+00:00"
    assert DeadLetterFilter().is_empty
    assert not criteria.is_empty


def test_entry_ids_are_ms_timestamps(redis_conn: Redis) -> None:
    before = int(time.time() * 1000)
    entry_id = DeadLetterStore(redis_conn).add(letter())
    assert before <= int(entry_id.split("-")[0]) <= int(time.time() * 1000)


@pytest.fixture(autouse=True)
def _no_leftover_routers() -> Iterator[None]:
    yield
    fixed_calls.clear()
