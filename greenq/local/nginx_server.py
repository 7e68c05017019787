"""A private nginx in front of local ingress processes, rendered from the same template as compose's."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from greenq.local.nginx_config import GREEN_API_SOURCE_IPS, render_nginx_config
from greenq.local.procs import stop_process, wait_for_port

#: Local clients (curl, the tests, the benchmarks) are exempt from nginx's per-client rate limit.
LOOPBACK = ("127.0.0.1", "::1")


def find_nginx() -> str | None:
    """The nginx binary (Debian keeps it in /usr/sbin, often not on a user's PATH)."""
    found = shutil.which("nginx")
    if found:
        return found
    return "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None


@dataclass
class LocalNginx:
    """One nginx master process owning ``run_dir``; ``upstreams`` are ``127.0.0.1:port`` ingresses."""

    run_dir: Path
    port: int
    upstreams: Sequence[str]
    body_cap_bytes: int
    webhook_path: str
    rate_per_second: int = 20
    burst: int = 40
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def config(self) -> str:
        run = str(self.run_dir)
        return render_nginx_config(
            listen=f"127.0.0.1:{self.port}",
            upstreams=self.upstreams,
            resolver=None,
            body_cap_bytes=self.body_cap_bytes,
            rate_per_second=self.rate_per_second,
            burst=self.burst,
            exempt_cidrs=(*GREEN_API_SOURCE_IPS, *LOOPBACK),
            access_log=f"{run}/nginx-access.log",
            error_log=f"{run}/nginx-error.log",
            pid_file=f"{run}/nginx.pid",
            temp_dir=run,
            webhook_path=self.webhook_path,
            # Run as root (a container, CI), nginx would drop its workers to `nobody`, who cannot reach
            # temp files under a private run_dir: every body over 64 KiB would get 500.
            worker_user="root" if os.geteuid() == 0 else None,
        )

    def start(self, timeout: float = 15.0) -> LocalNginx:
        binary = find_nginx()
        if binary is None:
            raise RuntimeError("nginx not found (apt-get install nginx)")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        conf = self.run_dir / "nginx.conf"
        conf.write_text(self.config())
        command = [binary, "-c", str(conf), "-p", str(self.run_dir), "-g", "daemon off;"]
        # Own session, like every child of `greenq up`: only the supervisor reacts to a terminal's Ctrl-C.
        self.process = subprocess.Popen(command, start_new_session=True)
        wait_for_port("127.0.0.1", self.port, timeout, self.process)
        return self

    def stop(self) -> None:
        """Graceful: SIGQUIT lets workers finish in-flight requests."""
        if self.process is not None:
            stop_process(self.process, timeout=15, sig=signal.SIGQUIT)
            self.process = None
