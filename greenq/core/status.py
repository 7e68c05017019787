"""What the pipeline looks like right now, read from Redis: backlog, held chats, retries, workers, dead
letters, outcomes.

Reads only: registry counts skip RQ's cleanup (which would move abandoned jobs), so ``greenq status`` never
changes what it reports on. :func:`read_backlog` is the one place queue depth and age are computed; the dead
letters are counted by their store. The text report is the CLI's (``greenq.cli.status_text``).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from redis import Redis
from rq import Queue, Worker
from rq.job import Job

from greenq.core import keys
from greenq.core.contract import SERIALIZER, notification_queue
from greenq.core.deadletters import DeadLetterStore, DeadLetterSummary, read_failed_jobs
from greenq.core.redis_memory import RedisMemory, read_memory

#: Dead letters read to count them by outcome; past this the per-outcome numbers cover the oldest ones only.
DEAD_LETTER_SCAN_LIMIT: Final = 10_000


@dataclass(frozen=True)
class QueueBacklog:
    """Jobs waiting in the queue and how long the oldest has waited."""

    depth: int
    oldest_age_seconds: float


@dataclass(frozen=True)
class WorkerView:
    """One RQ worker registered for the queue."""

    name: str
    state: str
    current_job: str | None
    last_heartbeat: str | None
    heartbeat_age_seconds: float | None
    hostname: str | None
    pid: int | None


@dataclass(frozen=True)
class Status:
    """Everything ``greenq status`` reports."""

    queue: str
    backlog: QueueBacklog
    #: Ordered mode: chats held behind a notification waiting for its retry; None in jobs mode.
    held_chats: int | None
    scheduled: int
    started: int
    #: Jobs in RQ's failed registry (``greenq dlq import-failed`` turns them into dead letters).
    failed: int
    failed_oldest_age_seconds: float
    workers: list[WorkerView]
    dead_letters: DeadLetterSummary
    #: Counts from :data:`greenq.core.keys.OUTCOME_COUNTS`; None while nothing records them.
    outcomes: dict[str, int] | None
    memory: RedisMemory
    read_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def read_backlog(connection: Redis, now: float | None = None, partition_count: int = 0) -> QueueBacklog:
    """Depth of the queue and age of its head job (0 when empty or the job has no enqueue time); in ordered
    mode (``partition_count`` > 0) plus every partition stream's entries and its oldest entry's age."""
    queue_key = notification_queue(connection).key
    pipe = connection.pipeline(transaction=False)
    pipe.llen(queue_key)
    pipe.lindex(queue_key, 0)
    depth, head = pipe.execute()
    age = 0.0
    if head:
        enqueued_at = connection.hget(Job.key_for(_text(head)), "enqueued_at")
        age = age_seconds(enqueued_at, time.time() if now is None else now)
    streams = read_partition_backlog(connection, partition_count, time.time() if now is None else now)
    return QueueBacklog(
        depth=int(depth) + streams.depth, oldest_age_seconds=max(age, streams.oldest_age_seconds)
    )


def read_partition_backlog(connection: Redis, partition_count: int, now: float) -> QueueBacklog:
    """Entries waiting in the partition streams; age from the oldest entry id (its milliseconds)."""
    if partition_count <= 0:
        return QueueBacklog(depth=0, oldest_age_seconds=0.0)
    pipe = connection.pipeline(transaction=False)
    for partition in range(partition_count):
        pipe.xlen(keys.partition_stream_key(partition))
        pipe.xrange(keys.partition_stream_key(partition), count=1)
    replies = pipe.execute()
    depth = sum(int(length) for length in replies[0::2])
    heads = [int(_text(entries[0][0]).split("-")[0]) / 1000 for entries in replies[1::2] if entries]
    return QueueBacklog(depth=depth, oldest_age_seconds=max((now - head for head in heads), default=0.0))


def read_held_chats(connection: Redis, partition_count: int) -> int:
    """Ordered mode: chats held behind a notification waiting for its retry, over every partition's held
    hash (HLEN each, one round trip; 0 without partitions)."""
    if partition_count <= 0:
        return 0
    pipe = connection.pipeline(transaction=False)
    for partition in range(partition_count):
        pipe.hlen(keys.partition_held_key(partition))
    return sum(int(length) for length in pipe.execute())


def age_seconds(stamp: object, now: float) -> float:
    """Seconds from an RQ timestamp (ISO-8601 UTC text) to ``now``; 0 when absent or unreadable."""
    if not isinstance(stamp, bytes | str):
        return 0.0
    try:
        moment = datetime.fromisoformat(_text(stamp).replace("Z", "+00:00"))
    except ValueError:
        return 0.0
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, now - moment.timestamp())


def read_workers(queue: Queue, now: float | None = None) -> list[WorkerView]:
    """Workers registered for ``queue`` (RQ removes a worker's registration when its key expires)."""
    now = time.time() if now is None else now
    views = []
    for worker in Worker.all(queue=queue, serializer=SERIALIZER):
        beat = worker.last_heartbeat
        views.append(
            WorkerView(
                name=str(worker.name),
                state=str(worker.get_state()),
                current_job=worker.get_current_job_id(),
                last_heartbeat=beat.isoformat(timespec="seconds") if beat else None,
                heartbeat_age_seconds=max(0.0, now - beat.timestamp()) if beat else None,
                hostname=worker.hostname,
                pid=worker.pid,
            )
        )
    return sorted(views, key=lambda view: view.name)


def read_outcomes(connection: Redis) -> dict[str, int] | None:
    raw = connection.hgetall(keys.OUTCOME_COUNTS)
    if not raw:
        return None
    return {_text(name): int(value) for name, value in raw.items()}


def read_status(
    connection: Redis,
    scan_limit: int = DEAD_LETTER_SCAN_LIMIT,
    partition_count: int = 0,
) -> Status:
    """Everything, by reads only: it works while Redis is full and refuses writes."""
    queue = notification_queue(connection)
    failed = read_failed_jobs(connection)
    return Status(
        queue=queue.name,
        backlog=read_backlog(connection, partition_count=partition_count),
        held_chats=read_held_chats(connection, partition_count) if partition_count > 0 else None,
        scheduled=queue.scheduled_job_registry.get_job_count(cleanup=False),
        started=queue.started_job_registry.get_job_count(cleanup=False),
        failed=failed.count,
        failed_oldest_age_seconds=failed.oldest_age_seconds,
        workers=read_workers(queue),
        dead_letters=DeadLetterStore(connection).summary(scan_limit),
        outcomes=read_outcomes(connection),
        memory=read_memory(connection),
    )


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
