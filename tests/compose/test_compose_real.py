"""``docker compose up -d --build`` for real: the project's Dockerfile and compose file on a real engine.

Only the upstream images are replaced, by stand-ins built from Debian packages (tests/compose/standins);
Grafana is left out, since no registry reachable here ships it (its dashboard's queries are still run
against the stack's Prometheus). Two GREEN API instances x 500 notifications are pushed by the simulator
through the published nginx port; mid-load the stack is scaled to 4 workers and 3 ingress, one worker is
SIGKILLed and the Redis container restarted. Every notification answered 200 must be processed exactly
once; Prometheus must scrape every replica, evaluate every panel and alert expression without error, show
throughput, and raise the no-worker alert once the workers are gone.

Run: ``pytest -m compose -s`` (root, host network namespace; see conftest.py).
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from redis import Redis
from redis.exceptions import RedisError

from greenq.core.contract import notification_queue
from greenq.simulator.control import SimulatorControl
from tests.compose.conftest import HOOK_TOKENS
from tests.compose.prometheus import (
    Prometheus,
    alert_expressions,
    dashboard_expressions,
    throughput_expressions,
)
from tests.compose.stack import ComposeStack, Ports
from tests.support.local_pipeline import processed
from tests.support.processes import wait_until
from tests.support.simulator import INSTANCE_TOKEN, OTHER_TOKEN, make_notifications, running_simulator, sdk

pytestmark = [pytest.mark.compose, pytest.mark.timeout(1200)]

PER_INSTANCE = 500
FIRST_BATCH = 100
# (what is done mid-load, notifications added per instance just before it): each starts with a backlog.
MID_LOAD_BATCHES = (150, 125, 125)
API_TOKENS = dict(zip(HOOK_TOKENS, (INSTANCE_TOKEN, OTHER_TOKEN), strict=True))
NO_WORKER_ALERT = "GreenqNoWorkerScraped"


def answered(control: SimulatorControl, field: str) -> int:
    return sum(int(control.stats(instance)[field]) for instance in HOOK_TOKENS)


def backlog(control: SimulatorControl) -> int:
    return sum(int(control.stats(instance)["queue_length"]) for instance in HOOK_TOKENS)


def kill_one_worker(stack: ComposeStack) -> None:
    victim = stack.containers("worker")[0]
    result = stack.engine.docker("kill", "--signal", "KILL", victim)
    assert result.returncode == 0, result.stderr


def mid_load_actions(stack: ComposeStack) -> list[tuple[str, Callable[[], object]]]:
    return [
        ("scale to worker=4 ingress=3", lambda: stack.scale(worker=4, ingress=3)),
        ("SIGKILL one worker", lambda: kill_one_worker(stack)),
        ("restart redis", lambda: stack.compose("restart", "redis")),
    ]


def push_with_faults(
    stack: ComposeStack, control: SimulatorControl, sent: dict[int, list[dict[str, Any]]]
) -> dict[str, int]:
    """Feed the simulator batch by batch; each action runs right after a batch was queued (the backlog)."""
    offsets = dict.fromkeys(sent, 0)

    def add(count: int) -> None:
        for instance, notifications in sent.items():
            control.add(instance, notifications[offsets[instance] : offsets[instance] + count])
            offsets[instance] += count

    add(FIRST_BATCH)
    wait_until(lambda: answered(control, "delivered") >= FIRST_BATCH, 120, "the first deliveries", 0.1)
    backlogs = {}
    for (name, action), count in zip(mid_load_actions(stack), MID_LOAD_BATCHES, strict=True):
        add(count)
        backlogs[name] = backlog(control)
        action()
    assert all(offset == PER_INSTANCE for offset in offsets.values())
    return backlogs


def quiet(redis: Redis) -> bool:
    """Nothing queued and no job running (a killed worker's job counts until it is recovered and re-run)."""
    try:
        queue = notification_queue(redis)
        return queue.count == 0 and not queue.started_job_registry.get_job_ids()
    except RedisError:
        return False


def count_processed(redis: Redis) -> Counter[tuple[int, int]]:
    try:
        return Counter(ident for _, ident in processed(redis))
    except RedisError:
        return Counter()


def nginx_statuses(stack: ComposeStack) -> dict[str, int]:
    """How nginx answered the webhooks (its JSON access log), e.g. 200s, and 502/503 while faults hit."""
    log = stack.compose("logs", "--no-color", "nginx", timeout=120)
    return dict(Counter(re.findall(r'"status":(\d+),', log)))


def check_exactly_once(redis: Redis, sent: dict[int, list[dict[str, Any]]], figures: dict[str, Any]) -> None:
    expected = {(n["instanceData"]["idInstance"], n["timestamp"]) for ns in sent.values() for n in ns}
    wait_until(lambda: set(count_processed(redis)) >= expected, 240, "every notification processed", 0.5)
    wait_until(lambda: quiet(redis), 240, "an empty queue and no running job", 0.5)
    seen = count_processed(redis)
    figures["processed"] = len(set(seen) & expected)
    figures["lost"] = len(expected - set(seen))
    figures["duplicates_seen_by_handlers"] = sum(seen.values()) - len(seen)
    figures["unexpected"] = len(set(seen) - expected)
    assert figures["lost"] == 0, figures
    assert figures["unexpected"] == 0, figures
    assert figures["duplicates_seen_by_handlers"] == 0, figures


def check_built_once(stack: ComposeStack, figures: dict[str, Any]) -> None:
    builds = re.findall(r"naming to \S*greenq:\S+|Successfully tagged greenq:\S+", str(figures["up_output"]))
    figures["greenq_image_builds"] = len(builds)
    assert len(builds) == 1, builds
    images = stack.image_ids("ingress") | stack.image_ids("worker")
    assert len(images) == 1, f"ingress and worker run different images: {images}"


def every_replica_up(stack: ComposeStack, prometheus: Prometheus) -> bool:
    for job in ("ingress", "worker"):
        up = prometheus.up(job)
        if not all(up.get(address) == 1.0 for address in stack.addresses(job)):
            return False
    return True


def check_prometheus(stack: ComposeStack, prometheus: Prometheus, load_started: float) -> None:
    wait_until(lambda: every_replica_up(stack, prometheus), 120, "up == 1 for every replica", 1.0)
    for expression in [*dashboard_expressions(), *alert_expressions()]:
        prometheus.query(expression.promql)  # raises on an evaluation error, naming the expression
    names = {e.origin.removeprefix("alert ") for e in alert_expressions()}
    wait_until(lambda: names <= set(prometheus.rule_health()), 60, "every alert rule evaluated", 1.0)
    unhealthy = {n: h for n, h in prometheus.rule_health().items() if n in names and h[0] != "ok"}
    assert not unhealthy, unhealthy

    def has_throughput(promql: str) -> bool:
        series = prometheus.query_range(promql, load_started, time.time())
        return any(float(value) > 0 for s in series for _, value in s["values"])

    for expression in throughput_expressions():
        promql = expression.promql
        wait_until(lambda: has_throughput(promql), 120, f"data for {expression.origin}", 2.0)  # noqa: B023


def check_every_ingress_served(stack: ComposeStack, prometheus: Prometheus, figures: dict[str, Any]) -> None:
    """nginx sent webhooks to every ingress replica, the one added by scaling included."""
    samples = prometheus.query("sum by (instance) (greenq_ingress_requests_total)")
    answered = {s["metric"]["instance"].rsplit(":", 1)[0]: round(float(s["value"][1])) for s in samples}
    figures["requests_per_ingress_replica_at_last_scrape"] = answered
    replicas = stack.addresses("ingress")
    assert len(replicas) == 3, replicas
    assert all(answered.get(address, 0) > 0 for address in replicas), (replicas, answered)


def check_no_worker_alert(stack: ComposeStack, prometheus: Prometheus, figures: dict[str, Any]) -> None:
    stopped = time.monotonic()
    stack.scale(worker=0, ingress=3)  # ingress stays as scaled (a bare --scale resets it to 2 replicas)
    states = {"pending", "firing"}
    wait_until(lambda: prometheus.alert_state(NO_WORKER_ALERT) in states, 240, NO_WORKER_ALERT, 1.0)
    figures["no_worker_alert_after_seconds"] = round(time.monotonic() - stopped, 1)


def test_compose_stack_processes_every_200_once_under_scaling_kills_and_a_redis_restart(
    stack: ComposeStack, figures: dict[str, Any]
) -> None:
    ports = figures["ports"]
    assert isinstance(ports, Ports)
    check_built_once(stack, figures)
    redis = Redis(host="127.0.0.1", port=ports.redis, password=str(figures["redis_password"]))
    prometheus = Prometheus(f"http://127.0.0.1:{ports.prometheus}")
    sent = {instance: make_notifications(instance, PER_INSTANCE) for instance in HOOK_TOKENS}
    load_started = time.time()
    with running_simulator(API_TOKENS, webhook_timeout=5.0, webhook_pause=0.3) as (url, control):
        for instance, token in API_TOKENS.items():
            webhook = {"webhookUrl": f"http://127.0.0.1:{ports.http}/green-api/webhook/"}
            webhook["webhookUrlToken"] = f"Bearer {HOOK_TOKENS[instance]}"
            sdk(url, instance, token).account.setSettings(webhook)
        figures["backlog_when_action_started"] = push_with_faults(stack, control, sent)
        wait_until(lambda: backlog(control) == 0, 300, "every notification answered 200", 0.2)
        figures["load_seconds"] = round(time.time() - load_started, 1)
        figures["sent"] = answered(control, "added")
        figures["answered_200"] = answered(control, "delivered")
        figures["failed_deliveries_resent"] = answered(control, "delivery_failures")
    figures["nginx_statuses"] = nginx_statuses(stack)
    assert figures["answered_200"] == figures["sent"] == 2 * PER_INSTANCE, figures
    assert all(count > 0 for count in figures["backlog_when_action_started"].values()), figures
    check_exactly_once(redis, sent, figures)
    check_prometheus(stack, prometheus, load_started)
    check_every_ingress_served(stack, prometheus, figures)
    check_no_worker_alert(stack, prometheus, figures)
    figures["total_seconds_before_teardown"] = round(time.monotonic() - figures["started"], 1)
    shown = {k: v for k, v in figures.items() if k not in {"up_output", "redis_password", "started"}}
    print(f"\ncompose-test figures: {shown}")
    prometheus.close()
    redis.close()
