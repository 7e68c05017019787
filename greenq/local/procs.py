"""Small helpers for running local processes: free ports, waiting for a port, stopping politely, and how the
terminal's user types our commands."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_for_port(
    host: str, port: int, timeout: float, process: subprocess.Popen[bytes] | None = None
) -> None:
    """Return once ``host:port`` accepts connections; raise if the deadline passes or the process died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process {process.args!r} exited with {process.returncode} before listening")
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listened on {host}:{port} within {timeout}s")


def stop_process(process: subprocess.Popen[bytes], timeout: float = 15.0, sig: int = signal.SIGTERM) -> int:
    """Send ``sig``, wait up to ``timeout``, then kill; returns the exit code."""
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
    return int(process.returncode)


def greenq_command() -> str:
    """How this terminal's user starts ``greenq``: bare when on PATH, else the venv's script."""
    script = Path(sys.executable).parent / "greenq"
    if shutil.which("greenq") == str(script) or not script.exists():
        return "greenq"
    try:
        return str(script.relative_to(Path.cwd()))
    except ValueError:
        return str(script)


def python_command() -> str:
    """This interpreter, as the terminal's user would type it."""
    try:
        return str(Path(sys.executable).relative_to(Path.cwd()))
    except ValueError:
        return sys.executable
