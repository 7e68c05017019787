"""RQ's failed registry, which must never lose a notification silently.

RQ moves a job there once all its retries raised (a poison batch, a bug, Redis failing on every try) and
deletes it after its ``failure_ttl`` without telling anyone. greenq makes that registry visible
(``greenq status``, the ``greenq_failed_jobs`` metrics and their alert) and drains it into the dead-letter
stream (``greenq dlq import-failed``): one ``failed`` dead letter per notification of the job, with the
job's error as the reason, so the usual ``greenq dlq`` list / show / replay apply.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
from redis import Redis
from redis.exceptions import WatchError
from rq.exceptions import DeserializationError, NoSuchJobError
from rq.job import Job
from rq.results import Result

from greenq.core import keys, notification
from greenq.core.contract import FAILURE_TTL, SERIALIZER, Envelope, EnvelopeError, notification_queue
from greenq.core.deadletters.store import DeadLetter, DeadLetterStore
from greenq.core.logs import fields
from greenq.core.notification import unwrap
from greenq.core.outcomes import Outcome

log = logging.getLogger("greenq.dlq")

#: Characters of the job's error kept in each dead letter's reason.
REASON_CHARS = 300


@dataclass(frozen=True)
class FailedJobs:
    """How many jobs sit in RQ's failed registry, and how long ago the oldest one failed."""

    count: int
    oldest_age_seconds: float


def registry_key(connection: Redis) -> str:
    return str(notification_queue(connection).failed_job_registry.key)


def read_failed_jobs(connection: Redis, now: float | None = None) -> FailedJobs:
    """Reads only (works while Redis is full). The age comes from the registry's expiry score."""
    key = registry_key(connection)
    pipe = connection.pipeline(transaction=False)
    pipe.zcard(key)
    pipe.zrange(key, 0, 0, withscores=True)
    count, oldest = pipe.execute()
    age = 0.0
    if oldest:
        failed_at = float(oldest[0][1]) - FAILURE_TTL
        age = max(0.0, (time.time() if now is None else now) - failed_at)
    return FailedJobs(count=int(count), oldest_age_seconds=age)


@dataclass
class ImportReport:
    """What ``import_failed_jobs`` did."""

    jobs: int = 0
    dead_letters: int = 0
    skipped: list[str] = field(default_factory=list)


def import_failed_jobs(connection: Redis, limit: int | None = None) -> ImportReport:
    """Move failed jobs (oldest first) into the dead-letter stream, each in one transaction."""
    key = registry_key(connection)
    report = ImportReport()
    job_ids = [_text(raw) for raw in connection.zrange(key, 0, -1 if limit is None else limit - 1)]
    for job_id in job_ids:
        imported = _import_one(connection, key, job_id)
        if imported is None:
            report.skipped.append(job_id)
            continue
        report.jobs += 1
        report.dead_letters += imported
    log.info(
        "failed jobs imported as dead letters",
        extra=fields(jobs=report.jobs, dead_letters=report.dead_letters, skipped=len(report.skipped)),
    )
    return report


def _import_one(connection: Redis, key: str, job_id: str) -> int | None:
    """Dead letters written for ``job_id``; None when another importer took it first."""
    job_key = Job.key_for(job_id)
    with connection.pipeline(transaction=True) as pipe:
        # A concurrent import deletes the job: our EXEC then aborts, so nothing is dead-lettered twice.
        pipe.watch(job_key)  # type: ignore[no-untyped-call]
        try:
            job = Job.fetch(job_id, connection=connection, serializer=SERIALIZER)
            letters = letters_for(job)
        except (NoSuchJobError, DeserializationError):
            pipe.unwatch()
            connection.zrem(key, job_id)  # its data expired or is unreadable: nothing left to keep
            return None
        store = DeadLetterStore(connection)
        pipe.multi()
        for letter in letters:
            store.add_in(pipe, letter)
        pipe.zrem(key, job_id)
        pipe.delete(job_key, Result.get_key(job_id))  # type: ignore[no-untyped-call]
        try:
            pipe.execute()
        except WatchError:
            return None
    return len(letters)


def letters_for(job: Job) -> list[DeadLetter]:
    """One ``failed`` dead letter per notification the job carried (its raw wire kept if unreadable). A
    partition's drain job carries none: its notifications stay in the partition stream, and the workers'
    sweep queues another drain (e.g. one an earlier release's worker could not run during an upgrade)."""
    if is_drain_job(job):
        return []
    reason = f"RQ job {job.id} failed after its retries: {_error_of(job)}"
    wires = job.args[0] if job.args and isinstance(job.args[0], list) else list(job.args)
    letters = []
    for wire in wires:
        try:
            envelope = Envelope.from_wire(wire)
        except EnvelopeError:
            envelope = Envelope(body=orjson.dumps(wire, default=str).decode(), source="replay")
        type_webhook, id_instance = _labels(envelope.body)
        letters.append(DeadLetter(Outcome.FAILED, (reason,), envelope, type_webhook, id_instance))
    return letters


def is_drain_job(job: Job) -> bool:
    """A ``drain_partition`` job, under today's path or the one the release with a top-level ``workers``
    package wrote (``greenq.workers.legacy`` maps it; the core may not import the workers)."""
    return str(job.func_name).rsplit(".", 1)[-1] == keys.DRAIN_FUNCTION.rsplit(".", 1)[-1]


def _error_of(job: Job) -> str:
    result = job.latest_result()
    text = (result.exc_string if result is not None else None) or "no error recorded"
    lines = [line for line in str(text).strip().splitlines() if line.strip()]
    return (lines[-1] if lines else "no error recorded")[:REASON_CHARS]


def _labels(body: str) -> tuple[str | None, int | None]:
    """typeWebhook and idInstance of a body, for ``greenq dlq list --type/--instance``."""
    try:
        data: Any = unwrap(orjson.loads(body))
    except orjson.JSONDecodeError:
        return None, None
    if not isinstance(data, dict):
        return None, None
    kind, instance = notification.type_webhook(data), notification.id_instance(data)
    return (
        kind if isinstance(kind, str) else None,
        instance if isinstance(instance, int) and not isinstance(instance, bool) else None,
    )


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
