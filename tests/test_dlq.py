"""``greenq dlq list``, ``show`` and ``purge`` against a real redis-server and real RQ burst workers."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from redis import Redis

from greenq.core import keys
from greenq.core.contract import Envelope
from greenq.core.deadletters import DeadLetter, DeadLetterStore, UnreadableDeadLetter
from greenq.core.outcomes import Outcome
from greenq.local.redis_server import LocalRedis
from tests.conftest import SAMPLES_DIR, DrainFn, load_sample, mutate
from tests.support.ops_cli import Cli, Result, add_at, enqueue, letter
from tests.support.processes import run_greenq, subprocess_env

TEXT_ID = "F7AEC1B7086ECDC7E6E45923F5EDB825"
STATUS = (SAMPLES_DIR / "outgoingMessageStatus__sent-sendByApi.json").read_text()


@pytest.fixture
def three_kinds(redis_conn: Redis, drain: DrainFn) -> dict[str, str]:
    """One real dead letter per outcome, made by real workers; maps outcome -> entry id."""
    enqueue(redis_conn, mutate(load_sample("incomingMessageReceived__textMessage.json"), "timestamp", "x"))
    enqueue(redis_conn, {**load_sample("incomingCall__default.json"), "typeWebhook": "brandNewWebhook"})
    drain()
    enqueue(redis_conn, STATUS)
    drain(router="tests.support.sink_routers:broken_router", max_retries=0)
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
