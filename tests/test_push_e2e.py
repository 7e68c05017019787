"""Push mode end to end: the GREEN API simulator delivers to nginx -> 2 ingress -> Redis -> 2 workers.

Two instances x 1,000 notifications (the samples mix). Midway both ingress processes are stopped (nginx then
answers 502: a 5xx burst, so the simulator pauses and resends the same notification) and restarted one after
the other. Every notification must be processed exactly once as handlers see it, none may be left in the
simulator, and each instance's notifications must have arrived in the order GREEN API sent them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from redis import Redis

from greenq.local.procs import stop_process
from greenq.local.up import LocalPipeline
from greenq.simulator.control import SimulatorControl
from tests.support.local_pipeline import processed, running_pipeline
from tests.support.processes import wait_until
from tests.support.simulator import (
    INSTANCE,
    INSTANCE_TOKEN,
    OTHER_INSTANCE,
    OTHER_TOKEN,
    identity,
    make_notifications,
    running_simulator,
    sdk,
)

PER_INSTANCE = 1000
HOOK_TOKENS = {INSTANCE: "push-e2e-hook-token-one-4f1c", OTHER_INSTANCE: "push-e2e-hook-token-two-9a7e"}


@pytest.fixture
def pipeline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalPipeline]:
    with running_pipeline(tmp_path, monkeypatch, HOOK_TOKENS, ingress=2, nginx=True) as local:
        yield local


def delivered(control: SimulatorControl) -> int:
    return sum(int(control.stats(instance)["delivered"]) for instance in HOOK_TOKENS)


@pytest.mark.slow
def test_push_through_nginx_survives_a_5xx_burst_and_restarts(pipeline: LocalPipeline) -> None:
    assert pipeline.redis is not None
    redis = Redis.from_url(pipeline.redis.url)
    sent = {instance: make_notifications(instance, PER_INSTANCE) for instance in HOOK_TOKENS}
    tokens = {INSTANCE: INSTANCE_TOKEN, OTHER_INSTANCE: OTHER_TOKEN}
    with running_simulator(webhook_timeout=5.0, webhook_pause=0.3) as (url, control):
        for instance, token in tokens.items():
            settings = {
                "webhookUrl": pipeline.webhook_url,
                "webhookUrlToken": f"Bearer {HOOK_TOKENS[instance]}",
            }
            sdk(url, instance, token).account.setSettings(settings)
            control.add(instance, sent[instance])
        wait_until(lambda: delivered(control) >= 600, 60, "600 deliveries before the outage")
        ingresses = [child for child in pipeline.children if child.role == "ingress"]
        for child in ingresses:  # both down: nginx answers 502, GREEN API pauses and resends
            stop_process(child.process, timeout=30)
        failures_before = sum(int(control.stats(i)["delivery_failures"]) for i in HOOK_TOKENS)
        wait_until(
            lambda: sum(int(control.stats(i)["delivery_failures"]) for i in HOOK_TOKENS) > failures_before,
            20,
            "a failed delivery during the outage",
        )
        for index in range(len(ingresses)):
            pipeline.restart_ingress(index)
        wait_until(lambda: delivered(control) == 2 * PER_INSTANCE, 120, "every notification to be delivered")
        stats = {instance: control.stats(instance) for instance in HOOK_TOKENS}

    wait_until(lambda: len(processed(redis)) >= 2 * PER_INSTANCE, 120, "the workers to process everything")
    seen = processed(redis)
    report: dict[str, Any] = {"stats": stats, "processed": len(seen)}

    assert all(s["queue_length"] == 0 for s in stats.values()), report
    assert sum(s["delivery_failures"] for s in stats.values()) > 0, report
    expected = {identity(orjson.dumps(n)) for notifications in sent.values() for n in notifications}
    assert sorted(ident for _, ident in seen) == sorted(expected), report  # exactly once each
    for instance, notifications in sent.items():
        arrival = [ident for _, ident in sorted(seen) if ident[0] == instance]
        assert arrival == [identity(orjson.dumps(n)) for n in notifications], f"order of {instance}"
    print(f"push-e2e: {report}")
