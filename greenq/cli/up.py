"""``greenq up``: the whole pipeline on this machine until Ctrl-C."""

from __future__ import annotations

import argparse
from pathlib import Path

from greenq.cli.context import given
from greenq.local.redis_server import DEFAULT_MAXMEMORY


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``greenq up``."""
    up = commands.add_parser("up", help="run the whole pipeline locally until Ctrl-C")
    up.add_argument("--ingress", type=int, default=1, help="ingress processes (default 1)")
    up.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    up.add_argument("--port", type=int, default=8080, help="first ingress port (default 8080)")
    up.add_argument("--data-dir", type=Path, default=Path(".greenq"), help="Redis data, token, metrics")
    up.add_argument("--redis-url", help="use this Redis instead of starting redis-server")
    up.add_argument("--log-dir", type=Path, help="write each process's logs to DIR/<name>.log")
    up.add_argument(
        "--appendfsync",
        choices=("always", "everysec"),
        default="always",
        help="Redis fsync policy; everysec is faster but may lose ~1 s of accepted notifications on a crash",
    )
    up.add_argument(
        "--maxmemory",
        default=DEFAULT_MAXMEMORY,
        help=f"memory limit of the private Redis (default {DEFAULT_MAXMEMORY}; README: Sizing Redis memory)",
    )
    up.add_argument(
        "--nginx",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="nginx in front (default: if installed)",
    )
    _register_bot_options(up)
    up.set_defaults(run=_run_up)


def _register_bot_options(up: argparse.ArgumentParser) -> None:
    """The options for handlers that reply: the router, the sender, a simulated instance to talk to."""
    up.add_argument(
        "--sender",
        action="store_true",
        default=None,
        help="also run greenq send, which delivers handlers' replies (needs GREENQ_INSTANCES)",
    )
    up.add_argument(
        "--router", help="the workers' router as module:attribute (e.g. examples.order_bot:router)"
    )
    up.add_argument(
        "--simulator",
        action="store_true",
        help="also run a simulated GREEN API instance pushing to this pipeline, and the sender for replies",
    )


def _run_up(args: argparse.Namespace) -> int:
    from greenq.local.up import UpOptions, run_up

    options = given(
        args,
        "ingress",
        "workers",
        "port",
        "data_dir",
        "redis_url",
        "nginx",
        "log_dir",
        "appendfsync",
        "maxmemory",
        "router",
        "simulator",
        "sender",
    )
    return run_up(UpOptions(**options))
