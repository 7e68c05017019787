"""Running the simulator: in the foreground (``greenq simulator``) or on a thread (tests, demos)."""

from __future__ import annotations

import logging
import threading
import time

import uvicorn
from starlette.types import ASGIApp

from greenq.simulator.app import create_app
from greenq.simulator.config import SimulatorConfig


class _DroppedResponseNoise(logging.Filter):
    """uvicorn reports every deliberately dropped response as an error; they are expected here."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "without completing response" not in record.getMessage()


def _uvicorn_config(app: ASGIApp, host: str, port: int) -> uvicorn.Config:
    logging.getLogger("uvicorn.error").addFilter(_DroppedResponseNoise())
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=5,
    )


def serve(config: SimulatorConfig) -> None:
    """Serve until SIGTERM/SIGINT."""
    uvicorn.Server(_uvicorn_config(create_app(config), config.host, config.port)).run()


class ServerThread:
    """An ASGI app served by uvicorn on a background thread of this process."""

    def __init__(self, app: ASGIApp, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._server = uvicorn.Server(_uvicorn_config(app, host, port))
        self._thread = threading.Thread(target=self._server.run, name=f"uvicorn:{port}", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> ServerThread:
        """Return once the server accepts connections."""
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"server did not start on {self.url} within {timeout}s")
            time.sleep(0.02)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._server.should_exit = True
        self._thread.join(timeout)


def simulator_thread(config: SimulatorConfig) -> ServerThread:
    """A simulator for ``config`` on a background thread (not started yet)."""
    return ServerThread(create_app(config), config.host, config.port)
