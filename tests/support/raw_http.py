"""Raw HTTP/1.1 over a socket, for tests of what a real server makes of bytes no HTTP client would send."""

from __future__ import annotations

import socket
import time


def exchange(port: int, data: bytes, half_close: bool = False) -> bytes:
    """Send raw bytes, return the first response's bytes (b"" when the server just closed)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        received = b""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and b"\r\n\r\n" not in received:
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
        return received


def status_of(response: bytes) -> int | None:
    """The status code of a raw HTTP/1.1 response, None when it is not one."""
    return int(response.split(b" ", 2)[1]) if response.startswith(b"HTTP/1.1 ") else None
