"""Reconciliation end to end: GREEN API (the simulator) silently loses 3% of 1,000 message notifications
(journaled, never delivered); after one ``greenq reconcile`` run, handlers have seen every message exactly
once, and a second run recovers nothing. Once in pull mode (simulator, poller, worker and reconciler are
processes) and once in push mode (simulator -> ``greenq up``'s ingress and workers).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from redis import Redis

from greenq.core.contract import notification_queue
from greenq.local.procs import stop_process
from greenq.local.up import LocalPipeline
from greenq.simulator.control import SimulatorControl
from tests.support.local_pipeline import running_pipeline
from tests.support.processes import wait_until
from tests.support.pull_pipeline import Pipeline
from tests.support.reconcile import (
    TOKENS,
    MessageKey,
    handled,
    handled_with_source,
    key_of,
    make_messages,
    reconcile_env,
    run_reconcile,
)
from tests.support.simulator import INSTANCE, OTHER_INSTANCE, running_simulator, sdk

pytestmark = pytest.mark.slow

PER_INSTANCE = 500
#: One notification in 33 is lost: 15 of each instance's 500, 30 of 1,000 (3%).
LOSE_EVERY, LOST_PER_INSTANCE = 33, 15
HOOK_TOKENS = {INSTANCE: "reconcile-hook-token-one-5d2e", OTHER_INSTANCE: "reconcile-hook-token-two-8c4f"}


def send_with_losses(control: SimulatorControl) -> dict[MessageKey, dict[str, Any]]:
    """Queue 500 messages per instance, 15 of which the simulator loses; every message by its key."""
    sent: dict[MessageKey, dict[str, Any]] = {}
    for instance in (INSTANCE, OTHER_INSTANCE):
        control.inject(instance, "lose", LOST_PER_INSTANCE, every=LOSE_EVERY)
        messages = make_messages(instance, PER_INSTANCE)
        control.add(instance, messages)
        sent.update((key_of(message), message) for message in messages)
    assert sum(control.stats(i)["lost"] for i in (INSTANCE, OTHER_INSTANCE)) == 2 * LOST_PER_INSTANCE
    return sent


def settled(redis: Redis, count: int) -> bool:
    """Handlers have seen ``count`` notifications and nothing is waiting in our queue."""
    return notification_queue(redis).count == 0 and sum(handled(redis).values()) >= count


def reconcile_and_check(
    redis: Redis, env: dict[str, str], workdir: Path, sent: dict[MessageKey, dict[str, Any]]
) -> None:
    """What every mode must show: the lost ones found, recovered once, and nothing the second time."""
    delivered = handled(redis)
    lost = set(sent) - set(delivered)
    assert len(lost) == 2 * LOST_PER_INSTANCE
    assert max(delivered.values()) == 1

    summaries, logs = run_reconcile(env, workdir)

    assert {name: s["recovered"] for name, s in summaries.items()} == {"first": 15, "second": 15}, logs
    assert all(s["unmapped"] == 0 and "error" not in s for s in summaries.values()), summaries
    wait_until(lambda: settled(redis, len(sent)), 60, "the recovered notifications to be handled")
    seen = handled(redis)
    assert set(seen) == set(sent), "a message was never handled"
    assert max(seen.values()) == 1, f"handled twice: {[k for k, n in seen.items() if n > 1][:5]}"
    recovered = {key_of(body) for body, source in handled_with_source(redis) if source == "reconcile"}
    assert recovered == lost

    again, _ = run_reconcile(env, workdir)

    assert {name: s["recovered"] for name, s in again.items()} == {"first": 0, "second": 0}
    assert all(s["checked"] == PER_INSTANCE for s in again.values()), again


def test_pull_mode_recovers_the_lost_three_percent_exactly_once(
    pull_pipeline: Pipeline,
    redis_conn: Redis,
) -> None:
    sent = send_with_losses(pull_pipeline.control)
    worker = pull_pipeline.start_worker()
    poller = pull_pipeline.start_poller()

    wait_until(
        lambda: (
            all(s["queue_length"] == 0 for s in pull_pipeline.stats().values())
            and settled(redis_conn, len(sent) - 2 * LOST_PER_INSTANCE)
        ),
        90,
        "every delivered notification to be handled",
        interval=0.1,
    )
    env = reconcile_env(pull_pipeline.redis_server, pull_pipeline.sim_url)
    reconcile_and_check(redis_conn, env, pull_pipeline.workdir, sent)

    assert stop_process(poller) == 0
    assert stop_process(worker) == 0


@pytest.fixture
def push_pipeline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalPipeline]:
    with running_pipeline(tmp_path, monkeypatch, HOOK_TOKENS, ingress=1, nginx=False) as local:
        yield local


def test_push_mode_recovers_the_lost_three_percent_exactly_once(
    push_pipeline: LocalPipeline, tmp_path: Path
) -> None:
    assert push_pipeline.redis is not None
    redis = Redis.from_url(push_pipeline.redis.url)
    with running_simulator(webhook_timeout=5.0, webhook_pause=0.2) as (url, control):
        for instance, hook_token in HOOK_TOKENS.items():
            settings = {"webhookUrl": push_pipeline.webhook_url, "webhookUrlToken": f"Bearer {hook_token}"}
            sdk(url, instance, TOKENS[instance]).account.setSettings(settings)
        sent = send_with_losses(control)
        wait_until(
            lambda: (
                all(control.stats(i)["queue_length"] == 0 for i in HOOK_TOKENS)
                and settled(redis, len(sent) - 2 * LOST_PER_INSTANCE)
            ),
            120,
            "every delivered notification to be handled",
            interval=0.1,
        )
        reconcile_and_check(redis, reconcile_env(push_pipeline.redis, url), tmp_path, sent)
        assert sum(control.stats(i)["delivery_failures"] for i in HOOK_TOKENS) == 0
    redis.close()
