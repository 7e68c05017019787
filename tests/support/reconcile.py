"""Helpers the reconciliation tests share: message notifications the journal can describe, what handlers
saw (the stream sink's entries), one pass in-process, and running ``greenq reconcile`` as a process."""

from __future__ import annotations

import asyncio
import copy
import subprocess
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import httpx2
import orjson
from prometheus_client import CollectorRegistry
from redis import Redis

from greenq.core import keys
from greenq.core.notification import unwrap
from greenq.core.settings import ReconcileSettings
from greenq.local.redis_server import LocalRedis
from greenq.pull.journal import JournalReader
from greenq.pull.rebuild import BUILDERS
from greenq.pull.reconcile import ChatRequest, InstanceReport
from greenq.pull.reconcile_metrics import ReconcileMetrics
from greenq.pull.reconcile_runner import readers_for, reconcile_all, reconciler_for
from greenq.simulator.control import SimulatorControl
from tests.conftest import SAMPLES_DIR
from tests.support.processes import GREENQ, subprocess_env
from tests.support.simulator import INSTANCE, INSTANCE_TOKEN, OTHER_INSTANCE, OTHER_TOKEN, instances_env

#: (idInstance, chatId, idMessage): how the tests name one message.
MessageKey = tuple[int, str, str]

TOKENS = {INSTANCE: INSTANCE_TOKEN, OTHER_INSTANCE: OTHER_TOKEN}


def message_templates() -> list[dict[str, Any]]:
    """Documented message notification samples whose type the journal describes, plus the file types and
    the API-sent direction the samples lack (same shapes, per GREEN API's documentation)."""
    templates = []
    for path in sorted(SAMPLES_DIR.glob("*MessageReceived__*.json")):
        data = orjson.loads(path.read_bytes())
        if data["messageData"]["typeMessage"] in BUILDERS:
            templates.append(data)
    image = next(t for t in templates if t["messageData"]["typeMessage"] == "imageMessage")
    for kind in ("videoMessage", "documentMessage", "audioMessage"):
        other = copy.deepcopy(image)
        other["messageData"]["typeMessage"] = kind
        templates.append(other)
    outgoing = next(t for t in templates if t["typeWebhook"] == "outgoingMessageReceived")
    templates.append({**copy.deepcopy(outgoing), "typeWebhook": "outgoingAPIMessageReceived"})
    return templates


def make_messages(id_instance: int, count: int, age_seconds: int = 900) -> list[dict[str, Any]]:
    """``count`` distinct recent messages (timestamps within the last ``age_seconds``), cycling through
    :func:`message_templates`, each with its own idMessage."""
    templates = message_templates()
    start = int(time.time()) - age_seconds
    messages = []
    for number in range(count):
        data = copy.deepcopy(templates[number % len(templates)])
        data["instanceData"]["idInstance"] = id_instance
        data["timestamp"] = start + number * age_seconds // (2 * count)
        data["idMessage"] = f"R{id_instance:X}{number:08X}"
        messages.append(data)
    return messages


def key_of(data: dict[str, Any]) -> MessageKey:
    return (
        int(data["instanceData"]["idInstance"]),
        str(data["senderData"]["chatId"]),
        str(data["idMessage"]),
    )


def handled(redis: Redis) -> Counter[MessageKey]:
    """How often handlers saw each message (the built-in stream sink writes one entry per handling)."""
    return Counter(key_of(body) for body, _ in handled_with_source(redis))


def handled_with_source(redis: Redis) -> list[tuple[dict[str, Any], str]]:
    found = []
    for stream in cast(list[bytes], redis.keys(f"{keys.EVENT_STREAM_PREFIX}*")):
        for _, fields in cast(list[tuple[bytes, dict[bytes, bytes]]], redis.xrange(stream)):
            body = unwrap(orjson.loads(fields[b"body"]))  # pull mode keeps the {receiptId, body} wrapper
            assert isinstance(body, dict)
            found.append((body, fields[b"source"].decode()))
    return found


def reconcile_env(redis_server: LocalRedis, sim_url: str, **extra: str) -> dict[str, str]:
    settings = {
        "GREENQ_INSTANCES": instances_env(sim_url),
        "GREENQ_RECONCILE_GRACE_SECONDS": "0",
        "GREENQ_RECONCILE_RATE_PER_SECOND": "20",
        "GREENQ_POLL_BACKOFF_BASE": "0.05",
        "GREENQ_POLL_BACKOFF_CAP": "0.5",
    }
    return subprocess_env(redis_server, **{**settings, **extra})


def run_reconcile(env: dict[str, str], cwd: Path, *args: str) -> tuple[dict[str, dict[str, Any]], str]:
    """One ``greenq reconcile`` pass: its per-instance summaries by name, and its stderr (the logs)."""
    result = subprocess.run(
        [*GREENQ, "reconcile", *args], env=env, cwd=cwd, capture_output=True, timeout=120, check=False
    )
    stderr = result.stderr.decode()
    assert result.returncode == 0, stderr
    summaries = [orjson.loads(line) for line in result.stdout.splitlines() if line.strip()]
    assert all(TOKENS[i] not in result.stdout.decode() + stderr for i in TOKENS), "a token was printed"
    return {summary["instance"]: summary for summary in summaries}, stderr


def journal_only(control: SimulatorControl, instance: int, messages: list[dict[str, Any]]) -> None:
    """Messages GREEN API journaled but never delivered."""
    control.inject(instance, "lose", len(messages))
    control.add(instance, messages)


@dataclass
class Pass:
    """One in-process reconciliation pass: per-instance reports, the metrics, the readers."""

    reports: dict[str, InstanceReport]
    registry: CollectorRegistry
    readers: dict[str, JournalReader]

    def metric(self, name: str, **labels: str) -> float | None:
        return self.registry.get_sample_value(name, labels)


def settings_for(sim_url: str, redis_server: LocalRedis, **overrides: Any) -> ReconcileSettings:
    values: dict[str, Any] = {
        "instances": instances_env(sim_url),
        "redis_url": redis_server.url,
        "reconcile_grace_seconds": 0,
        "reconcile_rate_per_second": 50,
        "poll_backoff_base": 0.05,
        "poll_backoff_cap": 0.3,
        **overrides,
    }
    return ReconcileSettings(_env_file=None, **values)  # type: ignore[call-arg]


def one_pass(settings: ReconcileSettings, redis: Redis, chat: ChatRequest | None = None) -> Pass:
    registry = CollectorRegistry()
    metrics = ReconcileMetrics.create(registry, [instance.name for instance in settings.instances])

    async def run() -> tuple[list[InstanceReport], dict[str, JournalReader]]:
        async with httpx2.AsyncClient(trust_env=False) as http:
            readers = readers_for(settings, http)
            reports = await reconcile_all(reconciler_for(settings, redis, metrics), readers, metrics, chat)
            return list(reports), readers

    reports, readers = asyncio.run(run())
    return Pass({report.instance: report for report in reports}, registry, readers)
