"""Dead-letter retention: the trim (function and ``greenq dlq trim``) and the workers' hourly schedule."""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from redis import Redis

from greenq.core.deadletters import DeadLetterStore, RetentionSchedule, trim_dead_letters
from greenq.local.redis_server import LocalRedis
from tests.support.ops_cli import Cli, add_at, letter
from tests.support.processes import run_greenq


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
    with caplog.at_level(logging.INFO, logger="greenq.dlq"):
        removed = trim_dead_letters(redis_conn, retention_days=30)

    assert removed == 2
    assert remaining(redis_conn) == [aged["29d"], aged["8d"], aged["1h"]]
    [record] = [r for r in caplog.records if r.getMessage() == "dead letters trimmed"]
    assert record.levelno == logging.INFO
    assert record.fields["removed"] == 2  # type: ignore[attr-defined]
    assert record.fields["remaining"] == 3  # type: ignore[attr-defined]


def test_zero_retention_keeps_everything_and_says_so(
    redis_conn: Redis, aged: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="greenq.dlq"):
        assert trim_dead_letters(redis_conn, retention_days=0) == 0

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
    env = {k: v for k, v in os.environ.items() if not k.startswith("GREENQ_")}
    env.update(GREENQ_REDIS_URL=redis_server.url, GREENQ_DEAD_LETTER_RETENTION_DAYS="2")

    result = run_greenq(["dlq", "trim"], env)

    assert result.returncode == 0, result.stderr
    assert result.stdout == "trimmed 1 (older than 2 days)\n"
    [line] = [orjson.loads(line) for line in result.stderr.splitlines() if "trimmed" in line]
    assert (line["level"], line["removed"], line["retention_days"]) == ("INFO", 1, 2)


def test_the_worker_schedule_trims_when_first_asked_then_once_per_interval(
    redis_conn: Redis, aged: dict[str, str]
) -> None:
    hourly = RetentionSchedule(retention_days=35)

    assert hourly.run_if_due(redis_conn) == 1  # the first maintenance pass trims
    hourly.retention_days = 30  # the 31-day entry is now due for removal, but the hour has not passed
    assert hourly.run_if_due(redis_conn) is None
    assert len(remaining(redis_conn)) == 4

    every_pass = RetentionSchedule(retention_days=30, interval_seconds=0)
    assert every_pass.run_if_due(redis_conn) == 1
    assert every_pass.run_if_due(redis_conn) == 0
    assert RetentionSchedule(retention_days=0, interval_seconds=0).run_if_due(redis_conn) is None
    assert remaining(redis_conn) == [aged["29d"], aged["8d"], aged["1h"]]
