"""Redis bytes per notification, measured on a real redis-server: the figures behind the README's sizing.

``python -m bench.memory [--count N]`` pushes N distinct notifications of each measured sample through the
real code paths and reads ``INFO memory`` / ``MEMORY USAGE``:

- ``queued``: an RQ job waiting in the queue (batch of 1, and batches of 64 as the group commit builds
  them under load), per notification;
- ``dedup``: the dedup marker a processed notification leaves for ``GREENQ_DEDUP_WINDOW_SECONDS``;
- ``stream``: one entry of the built-in stream sink (``greenq:events:<type>``);
- ``dead_letter``: one entry of the dead-letter stream.

Results go to ``bench/results/memory.json``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import orjson
from redis import Redis

from bench.common import ROOT, save, start_redis
from greenq.core import keys
from greenq.core.contract import Envelope, NotificationQueue, batch_to_wire
from greenq.core.deadletters.store import DeadLetter, DeadLetterStore
from greenq.core.outcomes import Outcome
from greenq.core.settings import WorkerSettings
from greenq.workers.runner import build_runtime

SAMPLES = ("incomingMessageReceived__textMessage", "outgoingMessageStatus__sent-sendByApi")


def used_memory(redis: Redis) -> int:
    return int(redis.info("memory")["used_memory"])


def bytes_per_item(redis: Redis, count: int, action: Callable[[], object]) -> float:
    """used_memory growth caused by ``action``, divided by ``count`` (Redis flushed first)."""
    redis.flushall()
    before = used_memory(redis)
    action()
    return (used_memory(redis) - before) / count


def envelopes(sample: str, count: int) -> list[Envelope]:
    """``count`` distinct copies of a documented sample (idMessage and timestamp varied)."""
    data = orjson.loads((ROOT / "tests" / "samples" / f"{sample}.json").read_bytes())
    return [
        Envelope(
            body=orjson.dumps({**data, "idMessage": f"MEM{n:016d}", "timestamp": 1_700_000_000 + n}).decode(),
            source="webhook",
        )
        for n in range(count)
    ]


def enqueue_all(redis: Redis, batch: list[Envelope], size: int) -> None:
    queue = NotificationQueue(redis)
    pipe = redis.pipeline(transaction=True)
    for start in range(0, len(batch), size):
        queue.enqueue(batch[start : start + size], pipeline=pipe)
        if len(pipe) > 2000:
            pipe.execute()
    pipe.execute()


def measure_sample(redis: Redis, sample: str, count: int) -> dict[str, Any]:
    batch = envelopes(sample, count)
    queued_1 = bytes_per_item(redis, count, lambda: enqueue_all(redis, batch, 1))
    queued_64 = bytes_per_item(redis, count, lambda: enqueue_all(redis, batch, 64))
    settings = WorkerSettings(_env_file=None, metrics_port=0, with_scheduler=False)  # type: ignore[call-arg]
    processed = bytes_per_item(redis, count, lambda: _process(redis, settings, batch))
    stream_key = keys.event_stream(orjson.loads(batch[0].body)["typeWebhook"])
    stream = int(redis.memory_usage(stream_key, samples=0) or 0) / count
    dedup = processed - stream
    store = DeadLetterStore(redis)
    letters = [DeadLetter(Outcome.INVALID, ("a schema error, about this long",), e) for e in batch]
    dead = bytes_per_item(redis, count, lambda: [store.add(letter) for letter in letters])
    return {
        "body_bytes": len(batch[0].body),
        "queued_job_batch_1": round(queued_1),
        "queued_job_batch_64": round(queued_64),
        "dedup": round(dedup),
        "stream": round(stream),
        "dead_letter": round(dead),
    }


def _process(redis: Redis, settings: WorkerSettings, batch: list[Envelope]) -> None:
    processor = build_runtime(settings, connection=redis).processor
    wires = batch_to_wire(batch)
    for start in range(0, len(wires), 64):
        processor.process_items(wires[start : start + 64])
    redis.delete(keys.OUTCOME_COUNTS)


def main(count: int = 20_000) -> dict[str, Any]:
    server = start_redis(appendfsync="everysec")
    redis = Redis.from_url(server.url)
    try:
        results = {sample: measure_sample(redis, sample, count) for sample in SAMPLES}
    finally:
        redis.close()
        server.stop()
    save("memory", {"count": count, "bytes_per_notification": results})
    for sample, figures in results.items():
        print(sample, figures)
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.memory", description=__doc__)
    parser.add_argument("--count", type=int, default=20_000, help="notifications per sample")
    main(parser.parse_args().count)
