"""Worker benchmark: notifications/s of one worker process on the samples mix.

- ``greenq_ordered``: the default design: notifications appended to the per-chat partition streams, drained
  by greenq's worker (one drain job per partition, batches of up to 256 read from the stream);
- ``greenq``: the ``jobs`` design: batched jobs (what the ingress's group commit produces) through greenq's
  SimpleWorker;
- ``stock_rq``: the same processing, one RQ job per notification, through RQ's SimpleWorker;
- ``plain_loop``: the ``jobs`` design's processing, same batch size, called in a loop with no queue at all
  (its ceiling: what is left is RQ's cost).

All three use the same Processor (same schemas, same router) and the same Redis. Enqueueing is not timed.
"""

from __future__ import annotations

import itertools
import statistics
import sys
import time
from collections.abc import Callable

import orjson
from redis import Redis
from rq import Queue, SimpleWorker
from rq.executions import Execution
from rq.job import Job

from bench.common import SAMPLES, save, start_redis
from greenq.core.contract import SERIALIZER, Envelope, NotificationQueue, batch_to_wire, notification_queue
from greenq.core.contract.partitioned import PartitionedQueue
from greenq.core.settings import WorkerSettings
from greenq.core.status import read_backlog
from greenq.workers.jobs import WorkerContext
from greenq.workers.rq_job import GreenqJob
from greenq.workers.runner import build_runtime


class StockWorker(SimpleWorker):
    """RQ's SimpleWorker plus the one thing a greenq job needs: the worker's context handed to it."""

    def __init__(self, queues: list[Queue], context: WorkerContext, **kwargs: object) -> None:
        super().__init__(queues, job_class=GreenqJob, **kwargs)  # type: ignore[arg-type]
        self.context = context

    def perform_job(self, job: Job, queue: Queue, execution: Execution) -> bool:
        if isinstance(job, GreenqJob):
            job.context = self.context
        return bool(super().perform_job(job, queue, execution))


def notifications(count: int) -> list[Envelope]:
    """``count`` distinct notifications cycling through the documented samples (ids varied)."""
    bodies = [orjson.loads(path.read_bytes()) for path in SAMPLES]
    envelopes = []
    for n, sample in zip(range(count), itertools.cycle(bodies), strict=False):
        target = sample.get("body", sample)
        if "idMessage" in target:
            target = {**target, "idMessage": f"BENCH{n:012d}"}
        body = {**sample, "body": target} if "body" in sample else target
        envelopes.append(Envelope(body=orjson.dumps(body).decode(), source="webhook"))
    return envelopes


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def run_mode(
    mode: str, redis: Redis, settings: WorkerSettings, envelopes: list[Envelope], batch: int
) -> float:
    """Notifications per second for one mode on a freshly flushed Redis."""
    redis.flushall()
    runtime = build_runtime(settings, connection=redis)
    if mode == "plain_loop":
        wires = batch_to_wire(envelopes)
        chunks = [wires[start : start + batch] for start in range(0, len(wires), batch)]
        return len(envelopes) / timed(lambda: [runtime.processor.process_items(chunk) for chunk in chunks])
    if mode == "greenq_ordered":
        return ordered_rate(redis, settings, runtime.worker, envelopes, batch)
    queue = NotificationQueue(redis)
    size = 1 if mode == "stock_rq" else batch
    for start in range(0, len(envelopes), size):
        queue.enqueue(envelopes[start : start + size])
    worker: SimpleWorker
    if mode == "stock_rq":
        worker = StockWorker(
            [notification_queue(redis)],
            runtime.context,
            connection=redis,
            serializer=SERIALIZER,
        )
    else:
        worker = runtime.worker
    seconds = timed(lambda: worker.work(burst=True, logging_level="WARNING"))
    assert queue.rq_queue.count == 0
    return len(envelopes) / seconds


def ordered_rate(
    redis: Redis, settings: WorkerSettings, worker: SimpleWorker, envelopes: list[Envelope], batch: int
) -> float:
    """The default design: append to the partition streams as the ingress does, then one burst worker."""
    ordered = PartitionedQueue(redis, settings.partitions)
    for start in range(0, len(envelopes), batch):
        ordered.enqueue(envelopes[start : start + batch])
    seconds = timed(lambda: worker.work(burst=True, logging_level="WARNING"))
    assert read_backlog(redis, partition_count=settings.partitions).depth == 0
    return len(envelopes) / seconds


def main(
    count: int = 20_000, stock_count: int = 2_000, batch: int = 256, rounds: int = 3
) -> dict[str, object]:
    server = start_redis("always")
    redis = Redis.from_url(server.url)
    settings = WorkerSettings(
        _env_file=None, redis_url=server.url, metrics_port=0, with_scheduler=False, log_level="WARNING"
    )  # type: ignore[call-arg]
    sizes = {"greenq_ordered": count, "greenq": count, "plain_loop": count, "stock_rq": stock_count}
    runs: dict[str, list[float]] = {mode: [] for mode in sizes}
    try:
        for _ in range(rounds):
            for mode, size in sizes.items():
                runs[mode].append(run_mode(mode, redis, settings, notifications(size), batch))
    finally:
        server.stop()
    summary = {mode: statistics.median(values) for mode, values in runs.items()}
    ratios = {
        "greenq_vs_stock_rq": summary["greenq"] / summary["stock_rq"],
        "greenq_vs_plain_loop": summary["greenq"] / summary["plain_loop"],
        "ordered_vs_stock_rq": summary["greenq_ordered"] / summary["stock_rq"],
        "ordered_vs_jobs": summary["greenq_ordered"] / summary["greenq"],
    }
    result = {
        "count": count,
        "stock_count": stock_count,
        "batch": batch,
        "rounds": rounds,
        "notifications_per_second": summary,
        "ratios": ratios,
        "runs": runs,
    }
    save("workers", result)
    return result


if __name__ == "__main__":
    print(main(count=int(sys.argv[1]) if len(sys.argv) > 1 else 20_000))
