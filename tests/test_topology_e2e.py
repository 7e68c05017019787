"""The compose topology as real local processes: nginx -> 2 ingress -> redis-server -> 2 workers.

2,000 distinct notifications (the samples mix) go through nginx while one ingress is stopped midway; every
request answered 200 must be processed exactly once, and every process must have taken part.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from redis import Redis

from greenq.core.contract import notification_queue
from greenq.local.procs import stop_process
from greenq.local.up import Child, LocalPipeline
from tests.support.deliveries import Deliveries
from tests.support.local_pipeline import distinct_bodies, running_pipeline, stream_ids
from tests.support.metrics import scrape
from tests.support.processes import poll

TOTAL = 2000
STOP_AFTER = 800


@pytest.fixture
def pipeline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalPipeline]:
    with running_pipeline(tmp_path, monkeypatch) as local:
        yield local


def accepted_by(ingress: Child) -> float:
    return scrape(f"{ingress.url}/metrics", 'greenq_ingress_requests_total{outcome="accepted"}')


def handled_by(workers: list[Child]) -> list[float]:
    return [scrape(w.url, 'greenq_notifications_total{outcome="handled"') for w in workers]


@pytest.mark.slow
def test_every_200_is_processed_exactly_once_across_an_ingress_stop(pipeline: LocalPipeline) -> None:
    assert pipeline.token_file is not None
    token = pipeline.token_file.read_text().strip()
    assert pipeline.redis is not None
    redis = Redis.from_url(pipeline.redis.url)
    ingresses = [child for child in pipeline.children if child.role == "ingress"]
    workers = [child for child in pipeline.children if child.role == "worker"]
    load = Deliveries(pipeline.webhook_url, token, connections=16)  # thread-safe, one pool

    first_ingress_accepted = 0.0
    with load.client, ThreadPoolExecutor(max_workers=16) as pool:
        futures = [pool.submit(load.deliver, item) for item in distinct_bodies(TOTAL)]
        load.wait_for_answers(STOP_AFTER)
        first_ingress_accepted = accepted_by(ingresses[0])
        # SIGTERM, as in a rolling restart: uvicorn shuts down gracefully, then re-raises the signal.
        assert stop_process(ingresses[0].process, timeout=30) in (0, -signal.SIGTERM)
        for future in futures:
            future.result()

    accepted = load.accepted
    poll(
        lambda: sum(handled_by(workers)) >= len(accepted),
        120,
        "the workers to process every accepted notification",
    )
    seen = stream_ids(redis)
    per_worker = handled_by(workers)
    second_ingress_accepted = accepted_by(ingresses[1])
    report: dict[str, Any] = {"accepted": len(accepted), "refused": load.refused(), "per_worker": per_worker}

    assert len(accepted) >= TOTAL * 0.95, report
    assert sorted(seen) == sorted(accepted), report  # exactly once: nothing lost, nothing twice
    assert first_ingress_accepted > 0, report
    assert second_ingress_accepted > 0, report
    assert all(count > 0 for count in per_worker), report
    print(f"topology: {report}, first ingress accepted {first_ingress_accepted:.0f} before its stop")
    assert notification_queue(redis).count == 0
