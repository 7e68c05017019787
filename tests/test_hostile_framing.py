"""Broken HTTP framing and endless requests against a real ``greenq ingress`` process (uvicorn + httptools):
a clear 400 or 413, nothing stored, no traceback in its log, memory bounded (but for the documented header
limitation, a strict xfail)."""

from __future__ import annotations

import select
import socket
from typing import Final

import pytest
from rq import Queue

from tests.conftest import TOKEN
from tests.support.hostile import WEBHOOK, record
from tests.support.raw_http import exchange, status_of
from tests.support.real_ingress import RealIngress, wait_for_log

pytestmark = pytest.mark.usefixtures("hostile_tally")  # GREENQ_HOSTILE_TALLY: the per-class counts

REQUEST_HEAD: Final = f"POST {WEBHOOK} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {TOKEN}\r\n".encode()


BROKEN_FRAMING: Final = [
    ("Content-Length not a number", REQUEST_HEAD + b"Content-Length: abc\r\n\r\n{}"),
    ("two different Content-Lengths", REQUEST_HEAD + b"Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}"),
    ("negative Content-Length", REQUEST_HEAD + b"Content-Length: -1\r\n\r\n{}"),
    ("chunked and Content-Length", REQUEST_HEAD + b"Transfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n"),
    ("header without colon", REQUEST_HEAD + b"Broken header line\r\nContent-Length: 2\r\n\r\n{}"),
    ("not HTTP (TLS hello)", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64),
]


@pytest.mark.parametrize("raw", [pytest.param(raw, id=name) for name, raw in BROKEN_FRAMING])
def test_broken_framing_is_400_from_the_server(real_ingress: RealIngress, queue: Queue, raw: bytes) -> None:
    offset = real_ingress.log_size()

    response = exchange(real_ingress.port, raw)

    status = status_of(response)
    record("broken framing (real server)", status or 0, queue.count)
    assert status == 400, response[:200]
    assert queue.count == 0
    logged = wait_for_log(real_ingress, offset, ("Invalid HTTP request received",))
    assert "Traceback" not in logged


def test_endless_chunked_body_is_cut_at_the_limit_with_bounded_memory(
    real_ingress: RealIngress, queue: Queue
) -> None:
    rss_before = real_ingress.rss_kib()
    chunk = b"x" * 65536
    sent = 0
    response = b""
    with socket.create_connection(("127.0.0.1", real_ingress.port), timeout=5) as sock:
        sock.sendall(REQUEST_HEAD + b"Transfer-Encoding: chunked\r\n\r\n")
        for _ in range(512):  # at most 32 MiB
            if select.select([sock], [], [], 0)[0]:
                break
            try:
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            except (BrokenPipeError, ConnectionResetError, TimeoutError):
                break
            sent += len(chunk)
        try:
            response = sock.recv(4096)
        except (ConnectionResetError, TimeoutError):
            response = b""
    grown = real_ingress.rss_kib() - rss_before

    record("endless chunked body (real server)", status_of(response) or 0, queue.count)
    assert status_of(response) == 413, response[:200]
    assert sent < 32 * 1024 * 1024, "the server kept reading past the limit"
    assert grown < 16 * 1024, f"ingress grew by {grown} KiB"
    assert queue.count == 0


@pytest.mark.parametrize(
    ("raw", "half_close"),
    [
        (REQUEST_HEAD + b'Content-Length: 1000\r\n\r\n{"a":', True),
        (REQUEST_HEAD + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n", False),
    ],
    ids=["truncated body, then half-close", "bad chunk size"],
)
def test_a_body_cut_short_is_a_refusal_not_a_traceback(
    real_ingress: RealIngress, queue: Queue, raw: bytes, half_close: bool
) -> None:
    offset = real_ingress.log_size()

    exchange(real_ingress.port, raw, half_close=half_close)

    logged = wait_for_log(real_ingress, offset, ("Traceback", "webhook refused"))
    assert queue.count == 0
    assert "Traceback" not in logged
    assert "webhook refused" in logged


@pytest.mark.xfail(
    strict=True,
    reason="KNOWN LIMITATION (kept for throughput): uvicorn's httptools parser buffers header bytes "
    "without a "
    "limit (a 64 MiB header grew the ingress by ~116 MiB). Every shipped topology puts nginx in front, whose "
    "large_client_header_buffers bounds headers; the README says never to expose the ingress directly. "
    "h11 with h11_max_incomplete_event_size would fix it at a large throughput cost.",
)
def test_endless_header_is_cut_with_bounded_memory(real_ingress: RealIngress) -> None:
    rss_before = real_ingress.rss_kib()
    with socket.create_connection(("127.0.0.1", real_ingress.port), timeout=5) as sock:
        sock.sendall(REQUEST_HEAD + b"X-Flood: ")
        for _ in range(512):  # at most 32 MiB
            try:
                sock.sendall(b"a" * 65536)
            except (BrokenPipeError, ConnectionResetError, TimeoutError):
                break
        grown = real_ingress.rss_kib() - rss_before
    assert grown < 16 * 1024, f"ingress grew by {grown} KiB"
