"""Shared fixtures: a private redis-server per test session, real workers, the documented samples.

Redis is a real ``redis-server`` on a free port (never the machine's shared one). A run without
redis-server fails; it does not skip.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import settings
from pydantic import SecretStr
from redis import Redis
from rq import Queue

from greenq.core.contract import notification_queue
from greenq.core.settings import IngressSettings, WorkerSettings
from greenq.local.redis_server import LocalRedis
from greenq.workers.runner import WorkerRuntime, build_runtime

# CI runs the property tests with fixed seeds, so a red build is reproducible and never a coin toss.
settings.register_profile("ci", derandomize=True, database=None, deadline=None)
if os.environ.get("CI"):
    settings.load_profile("ci")

#: Fixtures more than one test module uses, defined beside their helpers in tests/support/.
pytest_plugins = [
    "tests.support.simulator",
    "tests.support.ops_cli",
    "tests.support.pull_pipeline",
    "tests.support.hostile",
    "tests.support.real_ingress",
    "tests.support.notification_examples",
]

SAMPLES_DIR = Path(__file__).parent / "samples"
TOKEN = "t0ken-for-tests-7f3a9c"
OTHER_TOKEN = "another-instance-token-55b1"


def sample_paths() -> list[Path]:
    return sorted(SAMPLES_DIR.glob("*.json"))


def load_sample(name: str) -> dict[str, Any]:
    data = orjson.loads((SAMPLES_DIR / name).read_bytes())
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRedis]:
    # A limit like production's, smaller: a test that leaks memory fails here instead of passing.
    server = LocalRedis(tmp_path_factory.mktemp("redis"), appendfsync="everysec", maxmemory="256mb").start()
    yield server
    server.stop()


@pytest.fixture
def redis_conn(redis_server: LocalRedis) -> Iterator[Redis]:
    connection = Redis.from_url(redis_server.url)
    connection.flushall()
    yield connection
    connection.close()


@pytest.fixture
def queue(redis_conn: Redis) -> Queue:
    return notification_queue(redis_conn)


@pytest.fixture
def ingress_settings(redis_server: LocalRedis) -> IngressSettings:
    """The in-process ingress of the unit tests writes RQ batch jobs (``GREENQ_ORDERING=jobs``, the opt-out),
    which these tests read back job by job; the default, partition streams, is covered by the ordered-mode
    tests (tests/test_ordering*.py) and the end-to-end tests, which run greenq's real processes."""
    return IngressSettings(
        _env_file=None,  # type: ignore[call-arg]
        redis_url=redis_server.url,
        ordering="jobs",
        tokens={"instance-a": SecretStr(TOKEN), "instance-b": SecretStr(OTHER_TOKEN)},
    )


@pytest.fixture
def worker_settings(redis_server: LocalRedis) -> WorkerSettings:
    return WorkerSettings(
        _env_file=None,  # type: ignore[call-arg]
        redis_url=redis_server.url,
        metrics_port=0,
        retry_backoff=[0.0],
        with_scheduler=False,
    )


DrainFn = Callable[..., WorkerRuntime]


@pytest.fixture
def drain(redis_conn: Redis, worker_settings: WorkerSettings) -> DrainFn:
    """Run a real RQ burst worker over the queue until it is empty; returns the runtime for inspection."""

    def run(**overrides: Any) -> WorkerRuntime:
        settings = worker_settings.model_copy(update=overrides)
        runtime = build_runtime(settings, connection=redis_conn)
        runtime.worker.work(burst=True, with_scheduler=False)
        return runtime

    return run


def mutate(data: dict[str, Any], path: str, value: object = ...) -> dict[str, Any]:
    """A deep copy of ``data`` with ``path`` (dot-separated) removed, or set to ``value``."""
    result = copy.deepcopy(data)
    *parents, last = path.split(".")
    node = result
    for key in parents:
        node = node[key]
    if value is ...:
        del node[last]
    else:
        node[last] = value
    return result
