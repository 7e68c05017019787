"""The ``greenq`` command: ingress, worker, validate, up."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError

from greenq.cli import ingress as ingress_cli
from greenq.cli import ops as ops_cli
from greenq.core.settings import MissingRedisUrl
from greenq.local.redis_server import DEFAULT_MAXMEMORY
from greenq.pull import cli as poller_cli
from greenq.simulator import cli as simulator_cli


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except ValidationError as error:
        # Never echo the input: it may hold a token.
        problems = "; ".join(f"{_setting_name(e['loc'])}: {e['msg']}" for e in error.errors())
        sys.stderr.write(f"greenq: invalid settings: {problems}\n")
        return 2
    except MissingRedisUrl as error:
        sys.stderr.write(f"greenq: {error}\n")
        return 2


def _setting_name(loc: tuple[int | str, ...]) -> str:
    """A settings error located as the operator sets it: ``GREENQ_INSTANCES.0.apiUrl``, not ``instances``."""
    if not loc:
        return "settings"
    return ".".join([f"GREENQ_{str(loc[0]).upper()}", *map(str, loc[1:])])


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="greenq", description="GREEN API notification ingestion.")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    ingress_cli.register(commands)

    worker = commands.add_parser("worker", help="run a validating, routing RQ worker")
    worker.add_argument("--burst", action="store_true", help="exit when the queue is empty")
    worker.add_argument("--name", help="worker name (default: RQ's)")
    worker.add_argument("--metrics-port", type=int, help="metrics port, 0 = off (GREENQ_METRICS_PORT)")
    worker.set_defaults(run=_run_worker)

    validate = commands.add_parser(
        "validate", help="validate notification JSON files with the worker schemas"
    )
    validate.add_argument("files", nargs="+", type=Path)
    validate.set_defaults(run=_run_validate)

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
    up.set_defaults(run=_run_up)

    ops_cli.register(commands)
    poller_cli.register(commands)
    simulator_cli.register(commands)
    return parser


def _overrides(args: argparse.Namespace, *names: str) -> dict[str, object]:
    return {name: getattr(args, name) for name in names if getattr(args, name) is not None}


def _run_worker(args: argparse.Namespace) -> int:
    from greenq.core.logs import configure_logging
    from greenq.core.settings import WorkerSettings
    from greenq.workers.runner import run_worker

    settings = WorkerSettings(**_overrides(args, "metrics_port"))  # type: ignore[arg-type]
    configure_logging(settings.log_level)
    run_worker(settings, burst=args.burst, name=args.name)
    return 0


def _run_validate(args: argparse.Namespace) -> int:
    from greenq.cli.validate import validate_files

    return 0 if validate_files(args.files, sys.stdout) else 1


def _run_up(args: argparse.Namespace) -> int:
    from greenq.local.up import UpOptions, run_up

    options = UpOptions(
        ingress=args.ingress,
        workers=args.workers,
        port=args.port,
        data_dir=args.data_dir,
        redis_url=args.redis_url,
        nginx=args.nginx,
        log_dir=args.log_dir,
        appendfsync=args.appendfsync,
        maxmemory=args.maxmemory,
    )
    return run_up(options)
