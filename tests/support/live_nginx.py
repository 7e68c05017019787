"""A real nginx for tests: the static-topology rendering with every writable path in a test folder,
``nginx -t``, and a running nginx in front of stand-in upstreams that record what reaches them."""

from __future__ import annotations

import http.client
import json
import os
import signal
import ssl
import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from greenq.local.nginx_config import (
    DEFAULT_WEBHOOK_PATH,
    GREEN_API_SOURCE_IPS,
    TlsListener,
    render_nginx_config,
)
from greenq.local.procs import free_port
from tests.support.deploy_files import require_binary, run_tool
from tests.support.processes import wait_until

DEADLINE_SECONDS = 10.0


def render_local(
    runtime_dir: Path,
    listen_port: int,
    upstream_ports: Sequence[int],
    *,
    body_cap_bytes: int = 4096,
    rate_per_second: int = 1000,
    burst: int = 1000,
    exempt_cidrs: Sequence[str] = GREEN_API_SOURCE_IPS,
    tls: TlsListener | None = None,
) -> str:
    """The static-topology config with every writable path under ``runtime_dir``."""
    return render_nginx_config(
        listen=f"127.0.0.1:{listen_port}",
        upstreams=[f"127.0.0.1:{port}" for port in upstream_ports],
        resolver=None,
        body_cap_bytes=body_cap_bytes,
        rate_per_second=rate_per_second,
        burst=burst,
        exempt_cidrs=exempt_cidrs,
        access_log=str(runtime_dir / "access.log"),
        error_log=str(runtime_dir / "error.log"),
        pid_file=str(runtime_dir / "nginx.pid"),
        temp_dir=str(runtime_dir),
        tls=tls,
    )


def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    """A throwaway certificate and key for ``localhost``."""
    openssl = require_binary("openssl", "openssl")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    request = ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost"]
    made = run_tool([openssl, *request, "-keyout", str(key), "-out", str(cert)])
    assert made.returncode == 0, made.stderr
    return cert, key


def nginx_test(config: str, runtime_dir: Path) -> subprocess.CompletedProcess[str]:
    nginx = require_binary("nginx", "nginx")
    conf = runtime_dir / "nginx.conf"
    conf.write_text(config, encoding="utf-8")
    return run_tool([nginx, "-t", "-c", str(conf), "-p", str(runtime_dir)])


@dataclass
class Upstream:
    """A tiny HTTP server standing in for one ingress replica; records every request it gets."""

    name: str
    status: int = 200
    hits: list[dict[str, str]] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None
    thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        assert self.server is not None
        port: int = self.server.server_address[1]
        return port

    def start(self) -> Upstream:
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                self.rfile.read(length)
                seen = {
                    "upstream": upstream.name,
                    "method": self.command,
                    "path": self.path,
                    "body_length": str(length),
                    "x-forwarded-for": self.headers.get("X-Forwarded-For", ""),
                    "x-real-ip": self.headers.get("X-Real-IP", ""),
                    "authorization": self.headers.get("Authorization", ""),
                    "declared-length": self.headers.get("X-Greenq-Declared-Length", ""),
                }
                upstream.hits.append(seen)
                body = json.dumps(seen).encode()
                self.send_response(upstream.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name=f"upstream-{self.name}")
        self.thread.start()
        return self

    def stop(self) -> None:
        if self.server is None:
            return
        self.server.shutdown()
        self.server.server_close()
        if self.thread is not None:
            self.thread.join(timeout=DEADLINE_SECONDS)
        self.server = None


@dataclass
class RunningNginx:
    port: int
    process: subprocess.Popen[bytes]
    runtime_dir: Path

    def request(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        headers: Mapping[str, str] | None = None,
        tls: tuple[int, Path] | None = None,
    ) -> tuple[int, bytes]:
        """One request over plain HTTP or, with ``tls`` = (port, certificate), over TLS to a server that
        must present exactly that (self-signed) certificate."""
        connection: http.client.HTTPConnection
        if tls is None:
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=DEADLINE_SECONDS)
        else:
            port, certificate = tls
            trusted = ssl.create_default_context(cafile=str(certificate))
            trusted.check_hostname = False  # issued to localhost, reached as 127.0.0.1; the chain is checked
            connection = http.client.HTTPSConnection(
                "127.0.0.1", port, timeout=DEADLINE_SECONDS, context=trusted
            )
        try:
            connection.request(method, path, body=body, headers=dict(headers or {}))
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def post_webhook(
        self, body: bytes = b'{"typeWebhook":"x"}', headers: Mapping[str, str] | None = None
    ) -> tuple[int, bytes]:
        return self.request("POST", f"{DEFAULT_WEBHOOK_PATH}abc", body, headers)

    def answers_healthz(self) -> bool:
        if self.process.poll() is not None:
            _, stderr = self.process.communicate()
            pytest.fail(f"nginx exited with {self.process.returncode}: {stderr.decode(errors='replace')}")
        try:
            return self.request("GET", "/healthz")[0] == 200
        except OSError:
            return False

    def stop(self) -> None:
        """Graceful stop (SIGQUIT to the master); a second call does nothing."""
        if self.process.returncode is not None:
            return
        pid_file = self.runtime_dir / "nginx.pid"
        if self.process.poll() is None:
            master = int(pid_file.read_text().strip()) if pid_file.exists() else self.process.pid
            os.kill(master, signal.SIGQUIT)
            try:
                self.process.wait(timeout=DEADLINE_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.process.communicate(timeout=DEADLINE_SECONDS)


StartNginx = Callable[..., RunningNginx]


def start_local_nginx(
    runtime_dir: Path, upstream_ports: Sequence[int], **render_options: Any
) -> RunningNginx:
    """nginx in the foreground from :func:`render_local` (``runtime_dir`` holds its files), answering
    /healthz before this returns."""
    nginx = require_binary("nginx", "nginx")
    runtime_dir.mkdir()
    port = free_port()
    conf = runtime_dir / "nginx.conf"
    conf.write_text(render_local(runtime_dir, port, upstream_ports, **render_options), encoding="utf-8")
    process = subprocess.Popen(
        [nginx, "-c", str(conf), "-p", str(runtime_dir), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    running = RunningNginx(port=port, process=process, runtime_dir=runtime_dir)
    wait_until(running.answers_healthz, DEADLINE_SECONDS, "nginx to answer /healthz")
    return running
