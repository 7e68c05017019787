"""Slow clients against real nginx in front of a real ingress: cut off by nginx, never starving the ingress.

Slowloris (headers trickled) and a stalled body each hold connections open; nginx's client_header_timeout
and client_body_timeout (10 s in the shipped config) must close them, and real webhooks sent meanwhile must
still be answered 200, because nginx buffers request bodies and only hands complete requests upstream.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest

from greenq.local.nginx_server import LocalNginx
from greenq.local.procs import free_port, stop_process, wait_for_port
from greenq.local.redis_server import LocalRedis
from tests.conftest import SAMPLES_DIR, TOKEN
from tests.support.processes import REPO, env_for

SLOW_CLIENTS = 20
#: nginx's client_header_timeout / client_body_timeout in greenq/local/templates/nginx.conf.tmpl, plus slack.
CUT_OFF_WITHIN = 10 + 8


@pytest.fixture
def edge(redis_server: LocalRedis, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    ingress = subprocess.Popen(
        [sys.executable, "-m", "greenq", "ingress", "--port", str(port)], env=env_for(redis_server), cwd=REPO
    )
    nginx = LocalNginx(
        tmp_path / "nginx", free_port(), [f"127.0.0.1:{port}"], 1024 * 1024, "/green-api/webhook/"
    )
    try:
        wait_for_port("127.0.0.1", port, 30, ingress)
        nginx.start()
        yield nginx.url
    finally:
        nginx.stop()
        stop_process(ingress)


def open_slow(url: str, first_bytes: bytes) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=1)
    sock.sendall(first_bytes)
    return sock


def is_closed_by_server(sock: socket.socket) -> bool:
    """True once the server has answered (e.g. 408) or closed the connection; never blocks."""
    sock.setblocking(False)
    try:
        sock.recv(4096)  # data (an error status) or b"" (closed): either way nginx gave up on it
    except BlockingIOError:
        return False
    except OSError:
        return True
    return True


@pytest.mark.slow
def test_slow_clients_are_cut_off_and_do_not_starve_the_ingress(edge: str) -> None:
    slowloris = [
        open_slow(edge, b"POST /green-api/webhook/ HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        for _ in range(SLOW_CLIENTS)
    ]
    stalled = [
        open_slow(edge, b'POST /green-api/webhook/ HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{"a":')
        for _ in range(SLOW_CLIENTS)
    ]
    body = (SAMPLES_DIR / "incomingCall__default.json").read_bytes()
    answered = []
    started = time.monotonic()
    pending = slowloris + stalled
    last_trickle = 0.0
    with httpx.Client(timeout=10) as client:
        while pending and time.monotonic() - started < CUT_OFF_WITHIN:
            if time.monotonic() - last_trickle >= 0.5:  # one header byte per client every half second
                last_trickle = time.monotonic()
                for sock in slowloris:
                    if sock in pending:
                        with contextlib.suppress(OSError):
                            sock.sendall(b"a")
            response = client.post(
                f"{edge}/green-api/webhook/", content=body, headers={"Authorization": TOKEN}
            )
            answered.append(response.status_code)
            pending = [sock for sock in pending if not is_closed_by_server(sock)]
    for sock in slowloris + stalled:
        sock.close()

    assert pending == [], f"{len(pending)} slow connections still open after {CUT_OFF_WITHIN}s"
    assert answered, "no webhook was sent while the slow clients were connected"
    assert set(answered) == {200}
