"""``greenq worker``: a validating, routing RQ worker."""

from __future__ import annotations

import argparse

from greenq.cli.context import given


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``greenq worker``."""
    worker = commands.add_parser("worker", help="run a validating, routing RQ worker")
    worker.add_argument("--burst", action="store_true", help="exit when the queue is empty")
    worker.add_argument("--name", help="worker name (default: RQ's)")
    worker.add_argument("--metrics-port", type=int, help="metrics port, 0 = off (GREENQ_METRICS_PORT)")
    worker.set_defaults(run=_run_worker)


def _run_worker(args: argparse.Namespace) -> int:
    from greenq.core.logs import configure_logging
    from greenq.core.settings import WorkerSettings
    from greenq.workers.runner import run_worker

    settings = WorkerSettings(**given(args, "metrics_port"))
    configure_logging(settings.log_level)
    run_worker(settings, burst=args.burst, name=args.name)
    return 0
