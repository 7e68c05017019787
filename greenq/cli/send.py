"""``greenq send``: the sender that delivers handlers' replies (the outbox) to GREEN API."""

from __future__ import annotations

import argparse


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``greenq send`` to ``greenq``."""
    send = commands.add_parser(
        "send", help="deliver the outbox (ctx.reply / ctx.send) to GREEN API until stopped"
    )
    send.add_argument("--metrics-port", type=int, help="metrics port, 0 = off (GREENQ_SEND_METRICS_PORT)")
    send.set_defaults(run=_run_send)


def _run_send(args: argparse.Namespace) -> int:
    from greenq.core.settings import SenderSettings
    from greenq.sender.runner import run_sender

    given = {} if args.metrics_port is None else {"send_metrics_port": args.metrics_port}
    return run_sender(SenderSettings(**given))
