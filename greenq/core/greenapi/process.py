"""What the processes that call GREEN API share (``greenq poll``, ``reconcile``, ``instance``, ``send``):
logs with every secret redacted, a User-Agent, a metrics server for the life of the run, stop requests."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

from prometheus_client import CollectorRegistry, start_http_server

from greenq.core.greenapi.masking import RedactingFilter
from greenq.core.logs import configure_logging
from greenq.core.settings.instances import InstancesSettings

USER_AGENT = "greenq-poller/0.1"
SENDER_USER_AGENT = "greenq-sender/0.1"


def configure_api_logging(settings: InstancesSettings) -> None:
    """JSON logs as elsewhere, HTTP client chatter off, and every secret redacted from every record."""
    configure_logging(settings.log_level)
    for name in ("httpx2", "httpcore2"):
        logging.getLogger(name).setLevel(logging.WARNING)
    secrets = [instance.api_token.get_secret_value() for instance in settings.instances]
    password = urlsplit(settings.require_redis_url()).password
    redacting = RedactingFilter([*secrets, password or ""])
    for handler in logging.getLogger().handlers:
        handler.addFilter(redacting)


@contextmanager
def serving_metrics(registry: CollectorRegistry, host: str, port: int) -> Iterator[None]:
    """``registry`` on ``http://host:port/metrics`` until the block ends; port 0 serves nothing."""
    server = start_http_server(port, addr=host, registry=registry)[0] if port else None
    try:
        yield
    finally:
        if server is not None:
            server.shutdown()


def on_stop_signals(handler: Callable[[int], None]) -> None:
    """Call ``handler(signum)`` on the running loop when SIGTERM or SIGINT arrives."""
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, handler, signum)


async def stopped_within(stopping: asyncio.Event, seconds: float) -> bool:
    """Wait ``seconds``, or less if a stop is requested meanwhile; True if one was."""
    try:
        await asyncio.wait_for(stopping.wait(), seconds)
    except TimeoutError:
        return False
    return True
