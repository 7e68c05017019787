"""The compose topology as real local processes: nginx -> 2 ingress -> redis-server -> 2 workers.

2,000 distinct notifications (the samples mix) go through nginx while one ingress is stopped midway; every
request answered 200 must be processed exactly once, and every process must have taken part.
"""

from __future__ import annotations

import io
import itertools
import signal
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, cast

import httpx2 as httpx
import orjson
import pytest
from redis import Redis

from greenq.core import keys
from greenq.core.contract import notification_queue
from greenq.local.procs import free_port, stop_process
from greenq.local.up import LocalPipeline, UpOptions
from tests.conftest import sample_paths
from tests.support.processes import poll
from tests.test_processes import scrape

TOTAL = 2000
STOP_AFTER = 800


def distinct_bodies(count: int) -> Iterator[tuple[str, bytes]]:
    """(idMessage, body) pairs cycling through the documented samples that carry an idMessage."""
    samples = [orjson.loads(path.read_bytes()) for path in sample_paths()]
    samples = [s for s in samples if "idMessage" in s]
    for n, sample in zip(range(count), itertools.cycle(samples), strict=False):
        id_message = f"E2E{n:08d}"
        yield id_message, orjson.dumps({**sample, "idMessage": id_message})


@pytest.fixture
def pipeline(tmp_path: Path) -> Iterator[LocalPipeline]:
    options = UpOptions(ingress=2, workers=2, port=free_port(), data_dir=tmp_path, nginx=True)
    local = LocalPipeline(options, out=io.StringIO())
    try:
        local.start()
        yield local
    finally:
        local.stop()


def stream_ids(redis: Redis) -> list[str]:
    """idMessage of every entry in every event stream (what the stream-sink handler saw)."""
    ids: list[str] = []
    for stream in cast(list[bytes], redis.keys(f"{keys.EVENT_STREAM_PREFIX}*")):
        entries = cast(list[tuple[bytes, dict[bytes, bytes]]], redis.xrange(stream))
        ids.extend(fields[b"id_message"].decode() for _, fields in entries)
    return ids


@pytest.mark.slow
def test_every_200_is_processed_exactly_once_across_an_ingress_stop(pipeline: LocalPipeline) -> None:
    assert pipeline.token_file is not None
    token = pipeline.token_file.read_text().strip()
    assert pipeline.redis is not None
    redis = Redis.from_url(pipeline.redis.url)
    ingresses = [child for child in pipeline.children if child.role == "ingress"]
    workers = [child for child in pipeline.children if child.role == "worker"]
    accepted: set[str] = set()
    refused: dict[int, int] = {}
    lock = threading.Lock()
    sent = threading.Semaphore(0)

    def deliver(item: tuple[str, bytes]) -> None:
        id_message, body = item
        status = client.post(pipeline.webhook_url, content=body, headers={"Authorization": token}).status_code
        with lock:
            if status == 200:
                accepted.add(id_message)
            else:
                refused[status] = refused.get(status, 0) + 1
        sent.release()

    first_ingress_accepted = 0.0
    client = httpx.Client(timeout=30, limits=httpx.Limits(max_connections=16))  # thread-safe, one pool
    with client, ThreadPoolExecutor(max_workers=16) as pool:
        futures = [pool.submit(deliver, item) for item in distinct_bodies(TOTAL)]
        for _ in range(STOP_AFTER):
            sent.acquire(timeout=60)
        first_ingress_accepted = scrape(
            f"{ingresses[0].url}/metrics", 'greenq_ingress_requests_total{outcome="accepted"}'
        )
        # SIGTERM, as in a rolling restart: uvicorn shuts down gracefully, then re-raises the signal.
        assert stop_process(ingresses[0].process, timeout=30) in (0, -signal.SIGTERM)
        for future in futures:
            future.result()

    def all_processed() -> bool:
        return sum(scrape(w.url, 'greenq_notifications_total{outcome="handled"') for w in workers) >= len(
            accepted
        )

    poll(all_processed, 120, "the workers to process every accepted notification")
    seen = stream_ids(redis)
    per_worker = [scrape(w.url, 'greenq_notifications_total{outcome="handled"') for w in workers]
    second_ingress_accepted = scrape(
        f"{ingresses[1].url}/metrics", 'greenq_ingress_requests_total{outcome="accepted"}'
    )
    report: dict[str, Any] = {"accepted": len(accepted), "refused": refused, "per_worker": per_worker}

    assert len(accepted) >= TOTAL * 0.95, report
    assert sorted(seen) == sorted(accepted), report  # exactly once: nothing lost, nothing twice
    assert first_ingress_accepted > 0, report
    assert second_ingress_accepted > 0, report
    assert all(count > 0 for count in per_worker), report
    print(f"topology: {report}, first ingress accepted {first_ingress_accepted:.0f} before its stop")
    assert notification_queue(redis).count == 0
