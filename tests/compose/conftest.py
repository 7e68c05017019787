"""Fixtures of the compose test: a private Docker engine, stand-in images, and the running compose stack.

The test runs only when selected (``pytest -m compose -s``), in the host's network namespace (image builds
need the package registries), as root. Where the engine cannot be had, it skips with the reason, except
under CI (``CI=true``), where it fails: CI must never pass without having run it.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest

from greenq.local.procs import free_port
from tests.compose.engine import DockerEngine, EngineUnavailable
from tests.compose.stack import ComposeStack, Ports, write_env_file
from tests.compose.standins import compose_plugin, prepare_standins

# Kept between runs on one machine (the engine's data root: stand-in images, build layers; the compose
# plugin); a fresh machine starts from nothing and gets the same result, only slower.
CACHE_DIR = Path(os.environ.get("GREENQ_COMPOSE_CACHE", "/var/cache/greenq-compose-test"))
REQUIRED_TOOLS = {
    "dockerd": "docker.io",
    "docker": "docker.io",
    "debootstrap": "debootstrap",
    "iptables": "iptables",
    "dpkg-deb": "dpkg",
    "apt-get": "apt",
}
HOOK_TOKENS = {1101000001: "compose-hook-token-one-5d2a", 1101000002: "compose-hook-token-two-8e4c"}


def unavailable(reason: str) -> NoReturn:
    """No engine here: a failure under CI, a skip elsewhere."""
    if os.environ.get("CI", "").lower() in {"true", "1", "yes"}:
        pytest.fail(f"compose test cannot run: {reason}", pytrace=False)
    pytest.skip(f"compose test cannot run: {reason}")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Compose tests run only when ``-m`` selects them; a plain ``pytest`` lists them as skipped."""
    expression = str(config.getoption("markexpr") or "")
    if "compose" in expression and "not compose" not in expression:
        return
    skip = pytest.mark.skip(reason="needs a Docker engine and the registries: run `pytest -m compose -s`")
    for item in items:
        if item.get_closest_marker("compose"):
            item.add_marker(skip)


def network_interfaces() -> set[str]:
    """Interfaces of this process's network namespace (/proc/self/net is per namespace; /sys may not be)."""
    lines = Path("/proc/self/net/dev").read_text().splitlines()[2:]
    return {line.split(":", 1)[0].strip() for line in lines}


def check_host() -> None:
    if os.geteuid() != 0:
        unavailable("dockerd needs root")
    if network_interfaces() <= {"lo"}:
        unavailable(
            "no network interface but lo: a private network namespace? Run `pytest -m compose` in the host's "
            "(image builds need the Debian mirror and PyPI)"
        )
    missing = sorted({package for tool, package in REQUIRED_TOOLS.items() if shutil.which(tool) is None})
    if missing:
        unavailable(f"missing tools: apt-get install {' '.join(missing)}")


@pytest.fixture(scope="session")
def figures() -> dict[str, Any]:
    """Measured numbers, printed by the test."""
    return {"started": time.monotonic()}


@pytest.fixture(scope="session")
def engine(figures: dict[str, Any]) -> Iterator[DockerEngine]:
    check_host()
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    with (CACHE_DIR / "lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one compose test per machine at a time: they share the cache
        run_dir = Path(tempfile.mkdtemp(prefix="gqc-", dir="/tmp"))  # short: containerd's socket paths
        engine = DockerEngine(CACHE_DIR / "data", run_dir, CACHE_DIR / "docker-config")
        try:
            try:
                engine.start()
            except EngineUnavailable as error:
                unavailable(str(error))
            figures["dockerd_pid"] = engine.pid
            yield engine
        finally:
            stopping = time.monotonic()
            for step in engine.stop():
                print(f"compose-test cleanup: {step}")
            shutil.rmtree(run_dir, ignore_errors=True)
            print(f"compose-test: engine stopped, host restored in {time.monotonic() - stopping:.1f}s")
            print(f"compose-test: total {time.monotonic() - figures['started']:.1f}s, teardown included")
            left = engine.host_differences()
            assert not left, f"the host's network differs from before the engine started: {left}"


@pytest.fixture(scope="session")
def stack(
    engine: DockerEngine, figures: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ComposeStack]:
    scratch = tmp_path_factory.mktemp("compose")
    started = time.monotonic()
    compose_plugin(CACHE_DIR / "docker-config")
    figures["standins"] = prepare_standins(engine, scratch)
    figures["standins_seconds"] = round(time.monotonic() - started, 1)
    ports = Ports(http=free_port(), redis=free_port(), prometheus=free_port())
    figures["ports"] = ports
    figures["redis_password"] = secrets.token_urlsafe(16)
    write_env_file(scratch / "compose.env", ports, str(figures["redis_password"]), HOOK_TOKENS)
    stack = ComposeStack(engine, scratch / "compose.env")
    stack.down()  # a previous run that died may have left its containers in the cached data root
    started = time.monotonic()
    figures["up_output"] = stack.compose("up", "-d", "--build", "--wait", timeout=600)
    figures["time_to_healthy_seconds"] = round(time.monotonic() - started, 1)
    try:
        yield stack
    except BaseException:
        print(stack.logs())
        raise
    finally:
        stopping = time.monotonic()
        stack.down()
        engine.docker("image", "prune", "--force")  # greenq images of earlier code would pile up in the cache
        print(f"compose-test: docker compose down in {time.monotonic() - stopping:.1f}s")
