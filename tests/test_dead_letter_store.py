"""The dead-letter store's walks and counts, and the filter's parsing, against a real redis-server."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from redis import Redis

from greenq.core.deadletters import (
    DeadLetterFilter,
    DeadLetterStore,
    DeadLetterSummary,
    TimeSpecError,
    parse_when,
)
from greenq.core.deadletters.store import DELETE_CHUNK
from greenq.core.outcomes import Outcome
from tests.support.ops_cli import letter


def test_scan_pages_through_everything_and_ignores_entries_added_meanwhile(redis_conn: Redis) -> None:
    store = DeadLetterStore(redis_conn)
    ids = [store.add(letter()) for _ in range(10)]

    seen: list[str | None] = []
    for entry in store.scan(page_size=3):
        seen.append(entry.entry_id)
        store.add(letter())  # e.g. a replay that failed again while we walk

    assert seen == ids
    assert store.size() == 20


def test_outcome_counts_are_capped(redis_conn: Redis) -> None:
    store = DeadLetterStore(redis_conn)
    for outcome in (Outcome.INVALID, Outcome.INVALID, Outcome.FAILED):
        store.add(letter(outcome))

    assert store.outcome_counts(10) == ({"invalid": 2, "failed": 1}, 3)
    assert store.outcome_counts(2) == ({"invalid": 2}, 2)


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


def test_summary_counts_everything_and_says_when_the_split_is_partial(redis_conn: Redis) -> None:
    store = DeadLetterStore(redis_conn)
    assert store.summary(10) == DeadLetterSummary(total=0, by_outcome={}, complete=True)
    for outcome in (Outcome.FAILED, Outcome.INVALID, Outcome.INVALID):
        store.add(letter(outcome))

    assert store.summary(10) == DeadLetterSummary(3, {"failed": 1, "invalid": 2}, complete=True)
    assert store.summary(2) == DeadLetterSummary(3, {"failed": 1, "invalid": 1}, complete=False)


def test_remove_deletes_exactly_the_named_entries_in_chunks(redis_conn: Redis) -> None:
    store = DeadLetterStore(redis_conn)
    ids = [store.add(letter()) for _ in range(DELETE_CHUNK + 3)]

    assert store.remove(*ids[1:], "1-0") == DELETE_CHUNK + 2
    assert [entry.entry_id for entry in store.entries()] == ids[:1]
    assert store.remove() == 0
