"""Rolling upgrade: dead letters written by earlier releases are listed, shown and replayed by this one.

``tests/fixtures/dead_letters/previous_releases.json`` holds stream entries exactly as two earlier releases
wrote them (made with those releases' own ``DeadLetter.to_fields``, see tests/fixtures/README.md):
version-1 envelopes without ``body_encoding``, ``over_limit`` or ``replay_of``, a version-2 base64 body,
and empty ``type_webhook``/``id_instance`` for a body that could not be parsed. The test writes them raw
with XADD into its redis-server; the new ``greenq dlq`` reads them and a real burst worker processes the
replays.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import orjson
import pytest
from redis import Redis

from greenq.core import keys
from greenq.core.deadletters import DeadLetterStore
from greenq.core.outcomes import Outcome
from greenq.core.settings import CommonSettings
from greenq.core.status import read_outcomes, read_status
from tests.conftest import SAMPLES_DIR, DrainFn
from tests.support.effects import effects
from tests.support.ops_cli import Cli
from tests.support.ordering import waiting_envelopes

FIXTURE = Path(__file__).parent / "fixtures" / "dead_letters" / "previous_releases.json"
TEXT = (SAMPLES_DIR / "incomingMessageReceived__textMessage.json").read_text()
TEXT_ID = "F7AEC1B7086ECDC7E6E45923F5EDB825"
STATUS_ID = "ECE6BBEA514B66872790C3D9D52C5C19"
#: The partition count of a command that sets none.
PARTITIONS: int = CommonSettings.model_fields["partitions"].default
NOT_UTF8 = b'{"typeWebhook": "\xff\xfe"}'


@pytest.fixture
def old_ids(redis_conn: Redis) -> list[str]:
    """The fixture's entries, written raw as the old releases did; their ids, oldest first.

    In order: an ``invalid`` text message a stricter schema refused and an ``invalid`` non-JSON body (the
    first release), a ``failed`` status owing only its ``flaky`` handler and an ``invalid`` non-UTF-8 body
    (the release before this one).
    """
    entries: list[dict[str, Any]] = orjson.loads(FIXTURE.read_bytes())["entries"]
    for entry in entries:
        redis_conn.xadd(keys.DEAD_LETTER_STREAM, entry["fields"], id=entry["id"])
    return [str(entry["id"]) for entry in entries]


def test_old_dead_letters_are_listed_counted_and_filtered(
    cli: Cli, redis_conn: Redis, old_ids: list[str]
) -> None:
    listed = cli("dlq", "list")

    assert listed.code == 0, listed.err
    rows = [line.split(maxsplit=5) for line in listed.lines()]
    assert [row[0] for row in rows] == old_ids
    assert [row[2:5] for row in rows] == [
        ["invalid", "incomingMessageReceived", "1234"],
        ["invalid", "-", "-"],
        ["failed", "outgoingMessageStatus", "1101000002"],
        ["invalid", "-", "-"],
    ]
    assert rows[0][1] == "2024-11-22T18:26:40+00:00"
    assert rows[2][5] == "handler flaky raised RuntimeError: downstream is down"
    failed = cli("dlq", "list", "--outcome", "failed", "--json")
    assert [orjson.loads(line)["id"] for line in failed.lines()] == [old_ids[2]]
    early = cli("dlq", "list", "--until", "2025-01-01T00:00:00Z")
    assert [line.split()[0] for line in early.lines()] == old_ids[:2]
    assert read_status(redis_conn).dead_letters.by_outcome == {"invalid": 3, "failed": 1}


def test_old_dead_letters_are_shown_with_every_field(cli: Cli, old_ids: list[str]) -> None:
    failed = cli("dlq", "show", old_ids[2])
    text = orjson.loads(cli("dlq", "show", old_ids[0], "--json").out)
    binary = cli("dlq", "show", old_ids[3])

    assert failed.code == 0, failed.err
    for expected in (
        "outcome      failed",
        "  - handler flaky raised RuntimeError: downstream is down",
        "  request id   2f1e2d3c4b5a69788796a5b4c3d2e1f0",
        "  token name   instance-b",
        "  attempt      4",
        "  handlers     flaky",
        "  version      1",
        "stored as text",
    ):
        assert expected in failed.out, failed.out
    assert text["envelope"]["body"] == TEXT
    assert (text["envelope"]["version"], text["failed_at"]) == (1, 1732300000.5)
    head, _, body = binary.out.partition("\nbody (base64: the received bytes are not UTF-8)\n")
    assert base64.b64decode(body.strip()) == NOT_UTF8
    assert "  version      2" in head


def test_old_dead_letters_are_replayed_and_processed_by_a_burst_worker(
    cli: Cli, redis_conn: Redis, drain: DrainFn, old_ids: list[str]
) -> None:
    result = cli("dlq", "replay", "--all")

    assert (result.code, result.lines()) == (0, ["replayed 4"])
    # Ordered mode (the default): each replay waits in its chat's partition; chats have no order between them.
    waiting = waiting_envelopes(redis_conn, PARTITIONS)
    replayed = sorted(waiting, key=lambda envelope: old_ids.index(str(envelope.replay_of)))
    assert [envelope.replay_of for envelope in replayed] == old_ids
    assert {(envelope.source, envelope.attempt) for envelope in replayed} == {("replay", 1)}
    assert [envelope.pending_handlers for envelope in replayed] == [None, None, ("flaky",), None]
    assert replayed[2].request_id == "2f1e2d3c4b5a69788796a5b4c3d2e1f0"
    assert replayed[3].raw_body == NOT_UTF8

    drain(router="tests.support.effects:router")

    # The text message passes today's schemas (both handlers); the status runs only the handler it owed.
    assert sorted(effects(redis_conn)) == sorted(
        [(TEXT_ID, "record"), (TEXT_ID, "flaky"), (STATUS_ID, "flaky")]
    )
    assert read_outcomes(redis_conn) == {"handled": 2, "invalid": 2}
    again = DeadLetterStore(redis_conn).entries()
    assert not {entry.entry_id for entry in again} & set(old_ids)
    assert [(entry.outcome, entry.envelope.source) for entry in again] == [(Outcome.INVALID, "replay")] * 2
    assert sorted(str(entry.envelope.replay_of) for entry in again) == sorted([old_ids[1], old_ids[3]])
