"""Nothing expires silently: a job in RQ's failed registry is visible, alerted on, and replayable.

The job fails for real: a burst worker runs it while its processor raises on every batch (a bug outside
the handlers), so RQ records the error and files the job in its failed registry.
"""

from __future__ import annotations

import orjson
import pytest
from redis import Redis
from rq.job import Job

from greenq.cli.status_text import render_text
from greenq.core import keys
from greenq.core.contract import Envelope, NotificationQueue, batch_to_wire
from greenq.core.deadletters import failed_jobs
from greenq.core.deadletters.failed_jobs import ImportReport, read_failed_jobs
from greenq.core.deadletters.store import DeadLetter, DeadLetterStore
from greenq.core.outcomes import Outcome
from greenq.core.settings import WorkerSettings
from greenq.core.status import read_outcomes, read_status
from greenq.workers.jobs import WorkerContext
from greenq.workers.metrics import RedisStateCollector
from greenq.workers.runner import build_runtime, make_worker
from tests.conftest import DrainFn, load_sample
from tests.support.ops_cli import Cli
from tests.support.ordering import store_without_drain

TEXT = load_sample("incomingMessageReceived__textMessage.json")


class BrokenProcessor:
    """Stands in for the processor: every batch raises, as a bug outside the handlers would."""

    def process_batch(self, batch: object) -> dict[str, int]:
        raise RuntimeError("processor bug, batch of " + str(len(batch) if isinstance(batch, list) else 1))


def envelopes(count: int) -> list[Envelope]:
    return [
        Envelope(body=orjson.dumps({**TEXT, "idMessage": f"FJ{n:04d}"}).decode(), source="webhook")
        for n in range(count)
    ]


@pytest.fixture
def failed_job(redis_conn: Redis, worker_settings: WorkerSettings) -> str:
    """A two-notification job that RQ filed in its failed registry after it raised (no retries left)."""
    queue = NotificationQueue(redis_conn).rq_queue
    job = queue.enqueue(keys.JOB_FUNCTION, args=(batch_to_wire(envelopes(2)),), result_ttl=0)
    drain = build_runtime(worker_settings, connection=redis_conn).context.drain
    broken = WorkerContext(BrokenProcessor(), drain)  # type: ignore[arg-type]
    make_worker(worker_settings, redis_conn, broken).work(burst=True, with_scheduler=False)
    assert queue.failed_job_registry.get_job_ids(cleanup=False) == [job.id]
    return str(job.id)


def test_a_failed_job_is_visible_in_status_and_metrics(redis_conn: Redis, failed_job: str) -> None:
    status = read_status(redis_conn)
    gauges = {
        sample.name: sample.value
        for family in RedisStateCollector(redis_conn).collect()
        for sample in family.samples
    }

    assert status.failed == 1
    assert 0 <= status.failed_oldest_age_seconds < 600
    assert "greenq dlq import-failed" in render_text(status)
    assert gauges["greenq_failed_jobs"] == 1  # GreenqFailedJobs fires on it (alerts_test.yml)
    assert gauges["greenq_failed_job_oldest_age_seconds"] < 600


def test_import_failed_turns_the_job_into_dead_letters_and_replay_handles_them(
    cli: Cli, redis_conn: Redis, failed_job: str, drain: DrainFn
) -> None:
    imported = cli("dlq", "import-failed")
    again = cli("dlq", "import-failed")

    assert imported.code == 0
    assert imported.lines() == ["imported 1 failed job(s) as 2 dead letter(s)"]
    assert again.lines() == ["imported 0 failed job(s) as 0 dead letter(s)"]
    assert read_failed_jobs(redis_conn).count == 0
    assert not redis_conn.exists(f"rq:job:{failed_job}")
    letters = DeadLetterStore(redis_conn).entries()
    assert [letter.outcome for letter in letters] == [Outcome.FAILED, Outcome.FAILED]
    assert all("RuntimeError: processor bug, batch of 2" in letter.reasons[0] for letter in letters)
    assert {letter.type_webhook for letter in letters} == {"incomingMessageReceived"}

    replayed = cli("dlq", "replay", "--all")
    drain()

    assert replayed.lines() == ["replayed 2"]
    assert read_outcomes(redis_conn) == {"handled": 2}
    assert redis_conn.xlen(keys.event_stream("incomingMessageReceived")) == 2
    assert DeadLetterStore(redis_conn).size() == 0


def test_an_import_racing_another_never_dead_letters_a_job_twice(
    redis_conn: Redis, failed_job: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second importer runs to completion between the first one's read and its commit."""
    real_letters_for = failed_jobs.letters_for
    rival: list[ImportReport] = []

    def letters_then_rival(job: Job) -> list[DeadLetter]:
        letters = real_letters_for(job)
        if not rival:
            rival.append(ImportReport())  # mark before recursing: the rival itself reads normally
            rival[0] = failed_jobs.import_failed_jobs(redis_conn)
        return letters

    monkeypatch.setattr(failed_jobs, "letters_for", letters_then_rival)
    first = failed_jobs.import_failed_jobs(redis_conn)

    assert (rival[0].jobs, first.jobs) == (1, 0)
    assert first.skipped == [failed_job]
    assert DeadLetterStore(redis_conn).size() == 2


def test_a_failed_drain_job_imports_as_no_dead_letter_and_its_partition_is_drained_later(
    redis_conn: Redis, worker_settings: WorkerSettings, cli: Cli, drain: DrainFn
) -> None:
    """During an upgrade an earlier release's worker may fail a drain job (it cannot import today's path).
    The job names a partition, not notifications: importing it dead-letters nothing (the notifications
    wait in the partition stream), and the next worker's sweep drains them."""
    stored = [Envelope.of_bytes(orjson.dumps({**TEXT, "idMessage": f"FD{n}"}), "webhook") for n in range(3)]
    [partition] = store_without_drain(redis_conn, stored, worker_settings.partitions)  # one chat
    queue = NotificationQueue(redis_conn).rq_queue
    queue.enqueue(keys.DRAIN_FUNCTION, args=(partition,), result_ttl=0)  # no retries left
    broken = WorkerContext(BrokenProcessor(), BrokenDrain())  # type: ignore[arg-type]
    make_worker(worker_settings, redis_conn, broken).work(burst=True, with_scheduler=False)
    assert read_failed_jobs(redis_conn).count == 1

    assert cli("dlq", "import-failed").lines() == ["imported 1 failed job(s) as 0 dead letter(s)"]
    drain()

    assert DeadLetterStore(redis_conn).size() == 0
    assert read_outcomes(redis_conn) == {"handled": 3}


class BrokenDrain:
    """Stands in for the partition drain: every drain raises, as on a worker that cannot run it."""

    def drain(self, partition: int, lease_id: str) -> int:
        raise RuntimeError(f"cannot drain partition {partition}")

    def sweep(self) -> list[int]:
        return []
