"""The compose topology as real local processes: nginx -> 2 ingress -> redis-server -> 2 workers.

2,000 distinct notifications (the samples mix) go through nginx while one ingress is stopped midway; every
request answered 200 must be processed exactly once, and every process must have taken part.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from redis import Redis

from greenq.core.contract import notification_queue
from greenq.local.procs import stop_process
from greenq.local.up import LocalPipeline
from tests.support.local_pipeline import distinct_bodies, running_pipeline, stream_ids
from tests.support.metrics import scrape
from tests.support.processes import poll

TOTAL = 2000
STOP_AFTER = 800


@pytest.fixture
def pipeline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalPipeline]:
    with running_pipeline(tmp_path, monkeypatch) as local:
        yield local


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
