"""A private ``redis-server`` for ``greenq up`` and the test suite, configured like production.

AOF with ``appendfsync always`` (a 200 survives a Redis crash), a ``maxmemory`` limit with ``noeviction``
(queued notifications are never evicted; a full Redis refuses writes, so the ingress answers 503), a
password, loopback only.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from greenq.local.procs import free_port, stop_process, wait_for_port

#: The memory limit of every shipped Redis (compose, k8s, ``greenq up``); the README's "Sizing Redis
#: memory" shows what it holds: ~30 notifications/s sustained with 24 h of dedup, capped event streams,
#: 30 days of dead letters and an hour of backlog.
DEFAULT_MAXMEMORY = "1gb"


class RedisNotInstalled(RuntimeError):
    """No ``redis-server`` on PATH."""


@dataclass
class LocalRedis:
    """One redis-server process owning ``data_dir``."""

    data_dir: Path
    port: int = 0
    password: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    appendfsync: str = "always"
    maxmemory: str = DEFAULT_MAXMEMORY
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://:{self.password}@127.0.0.1:{self.port}/0"

    def config(self) -> str:
        """redis.conf text; written to a 0600 file so the password is not on a command line."""
        return "\n".join(
            (
                "bind 127.0.0.1",
                f"port {self.port}",
                f'dir "{self.data_dir}"',
                "appendonly yes",
                f"appendfsync {self.appendfsync}",
                'save ""',
                f"maxmemory {self.maxmemory}",
                "maxmemory-policy noeviction",
                f"requirepass {self.password}",
                f'logfile "{self.data_dir / "redis.log"}"',
                "daemonize no",
                "",
            )
        )

    def start(self, timeout: float = 10.0) -> LocalRedis:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        binary = shutil.which("redis-server")
        if binary is None:
            raise RedisNotInstalled("redis-server not found on PATH (apt-get install redis-server)")
        conf = self.data_dir / "redis.conf"
        conf.touch(mode=0o600)
        conf.write_text(self.config())
        # Own session: a Ctrl-C meant for ``greenq up`` must not stop Redis before the workers are done.
        self.process = subprocess.Popen(
            [binary, str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        wait_for_port("127.0.0.1", self.port, timeout, self.process)
        return self

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)
            self.process = None
