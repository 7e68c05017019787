"""Rolling upgrade: what the previous release wrote to Redis and to ``.env`` still works with this one.

That release installed ``workers`` as a top-level package: its jobs name ``workers.jobs.process_batch`` /
``workers.jobs.drain_partition``, and its default router was ``workers.handlers.builtin:default_router``.
The fixtures in ``tests/fixtures/previous-release/`` are every Redis key its ``greenq ingress`` wrote for one
notification (README there). A real burst worker runs them from a directory outside the repository, with
only the ``greenq`` package importable, so ``import workers`` cannot succeed by accident.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import zlib
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from redis import Redis
from rq.registry import FailedJobRegistry

import greenq
from greenq.core import keys
from greenq.core.contract import SERIALIZER, notification_queue
from greenq.core.status import read_outcomes
from greenq.local.redis_server import LocalRedis
from greenq.workers import legacy
from greenq.workers.handlers import builtin
from greenq.workers.jobs import drain_partition, process_batch
from greenq.workers.router import load_router
from greenq.workers.rq_job import GreenqJob, NoWorkerContext
from tests.support.processes import clean_env
from tests.support.redis_keys import decode, restore_keys

FIXTURES = Path(__file__).parent / "fixtures" / "previous-release"
OLD_ROUTER = "workers.handlers.builtin:default_router"
NEW_ROUTER = "greenq.workers.handlers.builtin:default_router"
#: Settings the previous release's fixtures were written with, as a user's .env would keep them.
MODES = {"batch-job": "", "drain-job": "GREENQ_ORDERING=partitioned\nGREENQ_PARTITIONS=1\n"}


def fixture(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))
    return loaded


@pytest.fixture
def outside(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A working directory outside the repository, and an environment that can import ``greenq`` (this
    checkout's) but nothing else of it: no repository root on sys.path."""
    root = tmp_path / "import-root"
    root.mkdir()
    (root / "greenq").symlink_to(Path(greenq.__file__).resolve().parent, target_is_directory=True)
    workdir = tmp_path / "deployment"
    workdir.mkdir()
    return workdir, clean_env(PYTHONPATH=str(root))


def job_function(stored: dict[str, Any]) -> str:
    """The function path inside the fixture's RQ job hash (RQ stores the call zlib-compressed)."""
    [job] = [entry["value"] for key, entry in stored["keys"].items() if key.startswith("rq:job:")]
    name: str = json.loads(zlib.decompress(decode(job["data"])))[0]
    return name


def log_records(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def run_python(workdir: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_worker_environment_cannot_import_the_old_package(outside: tuple[Path, dict[str, str]]) -> None:
    """The guard the subprocess test below relies on: ``workers`` is not importable there, greenq is."""
    workdir, env = outside
    probe = "import importlib.util, greenq; print(importlib.util.find_spec('workers'), greenq.__file__)"
    result = run_python(workdir, env, "-c", probe)
    assert result.returncode == 0, result.stderr
    spec, path = result.stdout.split()
    assert spec == "None"
    assert Path(path).resolve() == Path(greenq.__file__).resolve()


@pytest.mark.parametrize("name", sorted(MODES))
def test_a_job_the_previous_release_wrote_is_handled_by_a_new_worker_with_the_old_router_setting(
    name: str, redis_server: LocalRedis, redis_conn: Redis, outside: tuple[Path, dict[str, str]]
) -> None:
    workdir, env = outside
    stored = fixture(name)
    [job_key] = [key for key in stored["keys"] if key.startswith("rq:job:")]
    assert job_function(stored).startswith("workers.jobs.")  # as the old release wrote it
    restore_keys(redis_conn, stored["keys"])
    # The user's .env from before the upgrade.
    (workdir / ".env").write_text(f"GREENQ_ROUTER={OLD_ROUTER}\n{MODES[name]}", encoding="utf-8")
    env.update(GREENQ_REDIS_URL=redis_server.url, GREENQ_METRICS_PORT="0")

    result = run_python(workdir, env, "-m", "greenq", "worker", "--burst")

    logs = result.stdout + result.stderr
    assert result.returncode == 0, logs
    warnings = [record for record in log_records(logs) if record["level"] == "WARNING"]
    assert [record["message"] for record in warnings if OLD_ROUTER in record["message"]] == [
        f"GREENQ_ROUTER={OLD_ROUTER} is the previous release's name of a built-in router; loading"
        f" {NEW_ROUTER} instead: set GREENQ_ROUTER={NEW_ROUTER}"
    ]
    assert read_outcomes(redis_conn) == {"handled": 1}
    assert redis_conn.xlen(keys.event_stream("incomingMessageReceived")) == 1
    queue = notification_queue(redis_conn)
    assert queue.count == 0
    assert FailedJobRegistry(queue=queue).count == 0
    assert not redis_conn.exists(job_key)  # done and deleted (result_ttl=0), never failed
    assert redis_conn.xlen(keys.partition_stream_key(0)) == 0


def test_the_old_router_paths_load_todays_routers_with_a_warning_naming_them(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="greenq.worker"):
        routers = {name: load_router(old) for old, name in legacy.ROUTERS.items()}

    assert routers == {
        "greenq.workers.handlers.builtin:default_router": builtin.default_router,
        "greenq.workers.handlers.builtin:journal_router": builtin.journal_router,
        "greenq.workers.handlers.builtin:all_sinks_router": builtin.all_sinks_router,
    }
    assert [record.levelno for record in caplog.records] == [logging.WARNING] * 3
    for record, new in zip(caplog.records, routers, strict=True):
        assert f"set GREENQ_ROUTER={new}" in record.getMessage()


def test_today_s_router_path_loads_without_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="greenq.worker"):
        assert load_router(NEW_ROUTER) is builtin.default_router
    assert caplog.records == []


@pytest.mark.parametrize(
    ("old", "function"),
    [("workers.jobs.process_batch", process_batch), ("workers.jobs.drain_partition", drain_partition)],
)
def test_an_old_job_path_resolves_to_today_s_function_with_the_worker_context_first(
    redis_conn: Redis, old: str, function: object
) -> None:
    queue = notification_queue(redis_conn)
    job_id = queue.enqueue_call(old, args=(0,)).id
    job = GreenqJob.fetch(job_id, connection=redis_conn, serializer=SERIALIZER)
    assert isinstance(job, GreenqJob)
    with pytest.raises(NoWorkerContext):
        _ = job.func  # a greenq job never runs without a greenq worker's context
    job.context = context = object()  # type: ignore[assignment]

    bound = job.func

    assert isinstance(bound, partial)
    assert bound.func is function
    assert bound.args == (context,)
