"""Real ``greenq send`` processes against the simulator in tests: their environment (fast retries, a short
journal lag, four partitions), crash points, outbox entries written as the workers write them, and reading
what became of them (reply records, the simulator's log of sent messages)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any, cast

import httpx2
from redis import Redis

from greenq.core import keys
from greenq.core.outbox import OutboxEntry, ReplyRecord
from greenq.local.redis_server import LocalRedis
from greenq.simulator.control import SimulatorControl
from tests.support.processes import REPO, kill_group, subprocess_env, wait_until
from tests.support.simulator import INSTANCE, INSTANCE_TOKEN, instances_env

PARTITIONS = 4
#: GREEN API's smallest delaySendMessagesMilliseconds: the sender paces one call per this per instance.
SEND_DELAY_MS = 500
#: ``greenq send`` with the test crash hook (``GREENQ_TEST_CRASH_AT``) installed.
SENDER = (
    "import sys; from tests.support import crash; crash.install_from_env(); "
    "from greenq.cli.main import main; sys.exit(main(['send']))"
)


def sender_env(redis_server: LocalRedis, api_url: str, **extra: str) -> dict[str, str]:
    return subprocess_env(
        redis_server,
        **{
            "GREENQ_INSTANCES": instances_env(api_url),
            "GREENQ_PARTITIONS": str(PARTITIONS),
            "GREENQ_SEND_METRICS_PORT": "0",
            "GREENQ_SEND_JOURNAL_LAG_SECONDS": "1",
            "GREENQ_SEND_CLOCK_SKEW_SECONDS": "5",
            "GREENQ_SEND_BACKOFF_BASE": "0.05",
            "GREENQ_SEND_BACKOFF_CAP": "0.2",
            "GREENQ_SEND_LEASE_SECONDS": "3",
            "GREENQ_SEND_BLOCK_MS": "200",
            **extra,
        },
    )


def start_sender(env: dict[str, str], stderr: IO[bytes] | None = None) -> subprocess.Popen[bytes]:
    """A sender in its own process group; its logs go to ``stderr`` (default: this process's)."""
    return subprocess.Popen(
        [sys.executable, "-c", SENDER], env=env, cwd=REPO, start_new_session=True, stderr=stderr
    )


@contextmanager
def running_sender(env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    """A sender for the block; stopped with SIGTERM at its end (the test may stop it first)."""
    process = start_sender(env)
    try:
        yield process
    finally:
        kill_group(process, signal.SIGTERM)


def pace_at_minimum(api_url: str, id_instance: int = INSTANCE, token: str = INSTANCE_TOKEN) -> None:
    """Set the instance's delaySendMessagesMilliseconds to GREEN API's minimum (the simulator's is 5 s)."""
    url = f"{api_url}/waInstance{id_instance}/setSettings/{token}"
    response = httpx2.post(url, json={"delaySendMessagesMilliseconds": SEND_DELAY_MS}, timeout=10)
    assert response.json() == {"saveSettings": True}


def reply(name: str, chat: str, method: str = "sendMessage", **body: Any) -> OutboxEntry:
    """An outbox entry of the test instance, called ``name`` (its id); a text message unless ``body`` says."""
    return OutboxEntry(
        id=name,
        instance=str(INSTANCE),
        method=method,
        body={"chatId": chat, **(body or {"message": f"text of {name}"})},
        created=time.time(),
        handler="tests",
    )


def put(redis: Redis, partition: int, *entries: OutboxEntry) -> None:
    """XADD the entries to a partition's outbox stream, as a worker's commit does."""
    for entry in entries:
        redis.xadd(keys.outbox_stream_key(partition), entry.encode())  # type: ignore[arg-type]


def record(redis: Redis, entry_id: str) -> ReplyRecord | None:
    return ReplyRecord.decode(cast(bytes | None, redis.get(keys.reply_key(entry_id))))


def state(redis: Redis, entry_id: str) -> str | None:
    found = record(redis, entry_id)
    return found.state if found else None


def wait_for_states(redis: Redis, entries: list[OutboxEntry], wanted: str, timeout: float = 60) -> None:
    wait_until(
        lambda: all(state(redis, entry.id) == wanted for entry in entries),
        timeout,
        f"{len(entries)} entries to be {wanted}",
        interval=0.1,
    )


def sent_bodies(control: SimulatorControl, id_instance: int = INSTANCE) -> list[dict[str, Any]]:
    """Bodies of every message the simulator's instance actually sent, in order."""
    return [item["body"] for item in control.sent(id_instance)]


def sent_ids(control: SimulatorControl, id_instance: int = INSTANCE) -> dict[str, str]:
    """idMessage of each sent message, by its text (or chatId + method for messages without one)."""
    return {_label(item): item["idMessage"] for item in control.sent(id_instance)}


def _label(item: dict[str, Any]) -> str:
    body = item["body"]
    return str(body.get("message") or f"{body['chatId']} {item['type']}")
