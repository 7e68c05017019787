"""``greenq dlq import-failed``: RQ's failed registry into the dead-letter stream, before RQ expires it."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from greenq.cli.context import EXIT_OK, OpsContext, OpsHandler
from greenq.core.deadletters.failed_jobs import import_failed_jobs

Wrap = Callable[[OpsHandler], Callable[[argparse.Namespace], int]]


def add_parser(actions: argparse._SubParsersAction[argparse.ArgumentParser], wrap: Wrap) -> None:
    parser = actions.add_parser(
        "import-failed",
        help="turn jobs in RQ's failed registry into `failed` dead letters (then list / replay them)",
    )
    parser.add_argument("--limit", type=int, help="at most N jobs, oldest first")
    parser.set_defaults(run=wrap(_import_failed))


def _import_failed(args: argparse.Namespace, ctx: OpsContext) -> int:
    report = import_failed_jobs(ctx.redis, limit=args.limit)
    ctx.out.write(f"imported {report.jobs} failed job(s) as {report.dead_letters} dead letter(s)\n")
    if report.skipped:
        ctx.out.write(f"skipped {len(report.skipped)} (expired or taken by another import)\n")
    return EXIT_OK
