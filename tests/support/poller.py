"""Pull mode in-process: ``greenq poll``'s loop on a thread of the test, and its settings for tests."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from prometheus_client import CollectorRegistry

from greenq.core.redis_conn import connect
from greenq.core.settings import InstanceConfig, PollerSettings
from greenq.pull.metrics import PollerMetrics
from greenq.pull.runner import poll_instances


def instance(name: str, url: str, id_instance: int, token: str) -> InstanceConfig:
    return InstanceConfig.model_validate(
        {"name": name, "apiUrl": url, "idInstance": id_instance, "apiTokenInstance": token}
    )


def fast_settings(redis_url: str, instances: list[InstanceConfig], **overrides: Any) -> PollerSettings:
    """Settings with the documented minimum receiveTimeout and quick retries."""
    values: dict[str, Any] = {
        "redis_url": redis_url,
        "redis_socket_timeout": 1.0,
        "instances": instances,
        "receive_timeout": 5,
        "poll_request_timeout": 2.0,
        "poll_backoff_base": 0.02,
        "poll_backoff_cap": 0.2,
        "poll_auth_backoff_base": 0.2,
        "poll_auth_backoff_cap": 0.4,
        "poll_stop_timeout": 2.0,
        "poller_metrics_port": 0,
        **overrides,
    }
    return settings_from(**values)


def settings_from(**values: Any) -> PollerSettings:
    """Settings from these values and the environment, ignoring any ``.env`` file."""
    return PollerSettings(_env_file=None, **values)  # type: ignore[call-arg]


class PollerThread:
    """``poll_instances`` on its own loop and thread, as ``greenq poll`` runs it; stops like on SIGTERM."""

    def __init__(self, settings: PollerSettings) -> None:
        self.settings = settings
        self.registry = CollectorRegistry()
        self.metrics = PollerMetrics.create(self.registry, [i.name for i in settings.instances])
        self._redis = connect(settings.require_redis_url(), settings.redis_socket_timeout)
        self._loop = asyncio.new_event_loop()
        self._stopping: asyncio.Event | None = None
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, name="poller", daemon=True)

    def _run(self) -> None:
        async def main() -> None:
            self._stopping = asyncio.Event()
            self._started.set()
            await poll_instances(self.settings, self._redis, self.metrics, self._stopping)

        self._loop.run_until_complete(main())
        self._loop.close()

    def start(self) -> PollerThread:
        self._thread.start()
        assert self._started.wait(5)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Request a graceful stop and wait for it; fails if the poller does not finish in time."""
        if self._thread.is_alive():
            assert self._stopping is not None
            self._loop.call_soon_threadsafe(self._stopping.set)
            self._thread.join(timeout)
            assert not self._thread.is_alive(), "the poller did not stop in time"
        self._redis.close()

    @property
    def finished(self) -> bool:
        return not self._thread.is_alive()

    def value(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0
