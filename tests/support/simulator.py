"""The GREEN API simulator in tests: two instances and their tokens, a simulator on a thread (and the
``simulator`` fixture), GREEN API's own SDK pointed at it, and notifications made from the samples."""

from __future__ import annotations

import copy
import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson
import pytest
from redis import Redis
from rq.job import Job

from greenq.core import keys
from greenq.core.contract import SERIALIZER, notification_queue
from greenq.core.settings import CommonSettings
from greenq.local.procs import free_port
from greenq.simulator.config import SimulatorConfig
from greenq.simulator.control import SimulatorControl
from greenq.simulator.server import simulator_thread
from tests.conftest import SAMPLES_DIR
from tests.support.ordering import partition_entries

#: The partition count of a process that sets none (the ingress and poller these tests start).
DEFAULT_PARTITIONS: int = CommonSettings.model_fields["partitions"].default

INSTANCE = 1101000001
INSTANCE_TOKEN = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f6a7b8c9"
OTHER_INSTANCE = 1101000002
OTHER_TOKEN = "ffeeddccbbaa99887766554433221100ffeeddccbbaa998877"
#: A single-process uvicorn stops cleanly on SIGTERM and then re-raises the signal (exit status -15).
CLEAN_UVICORN_EXITS = (0, -signal.SIGTERM)


def instances_env(sim_url: str) -> str:
    """``GREENQ_INSTANCES`` for both simulator instances, named "first" and "second"."""
    return f"first={sim_url}|{INSTANCE}|{INSTANCE_TOKEN},second={sim_url}|{OTHER_INSTANCE}|{OTHER_TOKEN}"


def sample_templates() -> list[dict[str, Any]]:
    """Every documented notification sample (the pull-API wrapper sample is a wrapper, not a notification)."""
    paths = sorted(p for p in SAMPLES_DIR.glob("*.json") if not p.name.startswith("receiveNotification"))
    return [orjson.loads(path.read_bytes()) for path in paths]


def make_notifications(id_instance: int, count: int, start: int = 0) -> list[dict[str, Any]]:
    """``count`` distinct notifications cycling through the samples, numbered by ``timestamp``.

    Shapes stay as documented; only values change: the instance id, a unique timestamp and, where the type
    has one, a unique idMessage. (idInstance, timestamp) identifies each one.
    """
    templates = sample_templates()
    notifications = []
    for number in range(start, start + count):
        data = copy.deepcopy(templates[number % len(templates)])
        data["instanceData"]["idInstance"] = id_instance
        data["timestamp"] = 1_700_000_000 + number
        if "idMessage" in data:
            data["idMessage"] = f"{id_instance:X}{number:08X}"
        notifications.append(data)
    return notifications


def identity(body: str | bytes) -> tuple[int, int]:
    """(idInstance, timestamp) of a notification, or of the one inside a ``{receiptId, body}`` wrapper."""
    data = orjson.loads(body)
    if "receiptId" in data and "typeWebhook" not in data:
        data = data["body"]
    return int(data["instanceData"]["idInstance"]), int(data["timestamp"])


def queued_jobs(redis: Redis) -> list[Job | None]:
    """Every job waiting in the notification queue, in queue order (None for one that disappeared)."""
    raw_ids = redis.lrange(notification_queue(redis).key, 0, -1)
    job_ids = [raw.decode() if isinstance(raw, bytes) else str(raw) for raw in raw_ids]
    return Job.fetch_many(job_ids, connection=redis, serializer=SERIALIZER)


def queued_bodies(redis: Redis) -> list[str]:
    """Bodies of every envelope waiting for a worker, in the order they were accepted (see
    :func:`queued_envelopes`)."""
    return [str(envelope["body"]) for envelope in queued_envelopes(redis)]


def queued_envelopes(redis: Redis) -> list[dict[str, Any]]:
    """Every envelope waiting for a worker, as a dict: in RQ batch jobs (a producer with the ``jobs``
    opt-out), in queue order, then in the partition streams (the default), in the order they were received.
    The producers under test here (the simulator's one delivery in flight per instance, the poller's one
    receive at a time) accept one notification after another, so their receive times order them."""
    jobs = [job for job in queued_jobs(redis) if job is None or job.func_name == keys.JOB_FUNCTION]
    assert None not in jobs, "a queued job disappeared"
    batched = [dict(envelope) for job in jobs if job is not None for envelope in job.args[0]]
    streamed = [
        envelope
        for partition in range(DEFAULT_PARTITIONS)
        for envelope in partition_entries(redis, partition)
    ]
    return batched + [envelope.to_wire() for envelope in sorted(streamed, key=lambda one: one.received_at)]


@contextmanager
def running_simulator(
    instances: dict[int, str] | None = None,
    webhook_timeout: float = 2.0,
    webhook_pause: float = 0.1,
    journal_rate: int = 0,
    **options: Any,
) -> Iterator[tuple[str, SimulatorControl]]:
    """A simulator on a thread of the test process: its apiUrl and a control client (``options``: further
    SimulatorConfig fields, e.g. send_delay_ms)."""
    config = SimulatorConfig(
        instances=instances or {INSTANCE: INSTANCE_TOKEN, OTHER_INSTANCE: OTHER_TOKEN},
        port=free_port(),
        webhook_timeout=webhook_timeout,
        webhook_pause=webhook_pause,
        journal_rate=journal_rate,
        **options,
    )
    server = simulator_thread(config).start()
    control = SimulatorControl(server.url)
    try:
        yield server.url, control
    finally:
        control.close()
        server.stop()


@pytest.fixture
def simulator() -> Iterator[tuple[str, SimulatorControl]]:
    """A fresh simulator with both instances (a pytest plugin fixture: tests/conftest.py loads it)."""
    with running_simulator() as running:
        yield running


def sdk(api_url: str, id_instance: int = INSTANCE, token: str = INSTANCE_TOKEN) -> Any:
    """GREEN API's official client pointed at the simulator."""
    return official_sdk().GreenAPI(str(id_instance), token, host=api_url)


def official_sdk() -> Any:
    """GREEN API's SDK module. scripts/setup installs it without its dependencies (its aiogram would pin
    pydantic below ours), so a plain ``pip install -e '.[dev]'`` lacks it: skip there, never in CI."""
    try:
        from whatsapp_api_client_python import API
    except ImportError:
        if os.environ.get("CI"):
            raise
        pytest.skip("GREEN API's SDK is missing: scripts/setup installs it (pip cannot resolve it with ours)")
    return API
