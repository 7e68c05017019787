"""Operator commands: ``greenq dlq ...`` (dead letters) and ``greenq status``."""

from __future__ import annotations

import argparse

import orjson

from greenq.cli import dlq as dlq_cli
from greenq.cli.context import EXIT_OK, OpsContext, operator_command
from greenq.cli.status_text import render_text
from greenq.core.status import DEAD_LETTER_SCAN_LIMIT, read_status


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add this module's sub-commands to ``greenq``."""
    dlq_cli.add_parsers(commands, operator_command)

    status = commands.add_parser(
        "status", help="queue backlog, retries, workers, dead letters and outcomes, read from Redis"
    )
    status.add_argument("--json", action="store_true", help="one JSON object, for machines")
    status.add_argument(
        "--scan-limit",
        type=int,
        default=DEAD_LETTER_SCAN_LIMIT,
        help=f"dead letters read to split them by outcome (default {DEAD_LETTER_SCAN_LIMIT})",
    )
    status.set_defaults(run=operator_command(_status))


def _status(args: argparse.Namespace, ctx: OpsContext) -> int:
    status = read_status(ctx.redis, scan_limit=args.scan_limit, partition_count=ctx.settings.partitions)
    if args.json:
        ctx.out.write(orjson.dumps(status.to_dict(), option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        ctx.out.write(render_text(status) + "\n")
    return EXIT_OK
