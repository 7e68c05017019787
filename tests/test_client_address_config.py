"""Issue 10, defects 7 and 10: forwarded-address lines appended by a proxy, and allowlist/token config traps.

Each test runs a real ``greenq ingress`` process and talks raw HTTP to it, so the header lines reach the
server exactly as a proxy would send them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final

import pytest
from rq import Queue

from greenq.local.procs import free_port
from greenq.local.redis_server import LocalRedis
from tests.conftest import TOKEN
from tests.support.ingress import running_ingress
from tests.support.processes import env_for, run_greenq
from tests.support.raw_http import exchange, status_of

GREEN_API_IP: Final = "51.250.84.44"
OUTSIDER_IP: Final = "198.51.100.9"
BODY: Final = (Path(__file__).parent / "samples" / "stateInstanceChanged__default.json").read_bytes()


@contextmanager
def allowlisting_ingress(
    redis_server: LocalRedis, tmp_path: Path, allowed: str, trusted: str
) -> Iterator[int]:
    env = env_for(redis_server, GREENQ_ALLOWED_IPS=allowed, GREENQ_TRUSTED_PROXIES=trusted)
    with running_ingress(env, tmp_path / "ingress.log") as (port, _):
        yield port


def post(port: int, extra_header_lines: bytes) -> int | None:
    """One raw POST of a valid notification with the given extra header lines (CRLF-terminated)."""
    head = (
        b"POST /green-api/webhook/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        + f"Authorization: {TOKEN}\r\nContent-Length: {len(BODY)}\r\n".encode()
        + extra_header_lines
        + b"Connection: close\r\n\r\n"
    )
    return status_of(exchange(port, head + BODY))


@pytest.fixture
def behind_haproxy(redis_server: LocalRedis, tmp_path: Path) -> Iterator[int]:
    """An ingress that allows only GREEN API's address and trusts the proxy on 127.0.0.1."""
    with allowlisting_ingress(redis_server, tmp_path, GREEN_API_IP, "127.0.0.1") as port:
        yield port


def test_defect7_a_second_forwarded_for_line_from_the_proxy_is_read(
    behind_haproxy: int, queue: Queue
) -> None:
    """HAProxy ``option forwardfor`` appends its own line; the client's forged first line must not pass."""
    forged = f"X-Forwarded-For: {GREEN_API_IP}\r\n".encode()
    appended_by_proxy = f"X-Forwarded-For: {OUTSIDER_IP}\r\n".encode()

    status = post(behind_haproxy, forged + appended_by_proxy)

    assert status == 403
    assert queue.count == 0


def test_two_forwarded_for_lines_ending_at_an_allowed_client_pass(behind_haproxy: int, queue: Queue) -> None:
    """The same combination read the other way round: the right-most untrusted hop is the client."""
    lines = f"X-Forwarded-For: {OUTSIDER_IP}\r\nX-Forwarded-For: {GREEN_API_IP}\r\n".encode()

    assert post(behind_haproxy, lines) == 200
    assert queue.count == 1


def test_two_real_ip_lines_are_refused(behind_haproxy: int, queue: Queue) -> None:
    lines = f"X-Real-IP: {GREEN_API_IP}\r\nX-Real-IP: {OUTSIDER_IP}\r\n".encode()

    assert post(behind_haproxy, lines) == 403
    assert queue.count == 0


@pytest.mark.parametrize(
    ("allowed", "trusted", "extra"),
    [
        pytest.param("::ffff:127.0.0.1", "", b"", id="mapped-allowlist-entry"),
        pytest.param("::ffff:51.250.84.0/120", "", b"", id="mapped-allowlist-network-excludes-peer"),
        pytest.param(
            GREEN_API_IP,
            "::ffff:127.0.0.1",
            f"X-Forwarded-For: {GREEN_API_IP}\r\n".encode(),
            id="mapped-proxy",
        ),
    ],
)
def test_defect10_ipv4_mapped_config_entries_are_normalised(
    redis_server: LocalRedis, tmp_path: Path, queue: Queue, allowed: str, trusted: str, extra: bytes
) -> None:
    """``::ffff:a.b.c.d`` entries match the IPv4 client they name (the client address is folded to IPv4)."""
    expected = 403 if "/120" in allowed else 200
    with allowlisting_ingress(redis_server, tmp_path, allowed, trusted) as port:
        assert post(port, extra) == expected
    assert queue.count == (1 if expected == 200 else 0)


def test_defect10_a_non_ascii_token_is_refused_at_start_up_without_echoing_it(
    redis_server: LocalRedis,
) -> None:
    secret = "pässwörd-never-matches-ßecret"
    env = env_for(redis_server, GREENQ_TOKENS=f"tenant={secret}")

    done = run_greenq(["ingress", "--port", str(free_port())], env)

    errors = done.stderr
    assert done.returncode == 2
    assert "token 'tenant'" in errors
    assert "printable ASCII" in errors
    for fragment in ("ssw", "never-matches", "ecret"):
        assert fragment not in errors
