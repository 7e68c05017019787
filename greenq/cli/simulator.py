"""CLI command of the GREEN API simulator: ``greenq simulator``."""

from __future__ import annotations

import argparse
import sys

from greenq.simulator.config import DOCUMENTED_WEBHOOK_PAUSE, DOCUMENTED_WEBHOOK_TIMEOUT


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add this package's sub-commands to ``greenq``."""
    sim = commands.add_parser("simulator", help="run a GREEN API simulator (for tests and demos)")
    sim.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    sim.add_argument("--port", type=int, default=8090, help="port (default 8090)")
    sim.add_argument(
        "--instances",
        required=True,
        metavar="ID=TOKEN,...",
        help="instances as idInstance=apiTokenInstance, comma-separated",
    )
    sim.add_argument(
        "--webhook-timeout",
        type=float,
        default=DOCUMENTED_WEBHOOK_TIMEOUT,
        help=f"seconds to wait for a webhook answer (default {DOCUMENTED_WEBHOOK_TIMEOUT:g}, as GREEN API)",
    )
    sim.add_argument(
        "--webhook-pause",
        type=float,
        default=DOCUMENTED_WEBHOOK_PAUSE,
        help=f"seconds before resending after a failed delivery (default {DOCUMENTED_WEBHOOK_PAUSE:g})",
    )
    _add_message_options(sim)
    sim.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    sim.set_defaults(run=_run_simulator)


def _add_message_options(parser: argparse.ArgumentParser) -> None:
    """Options of the journal and of sending."""
    parser.add_argument(
        "--journal-rate",
        type=int,
        default=0,
        help="calls per second each journal method answers before 429 (default 0 = unlimited)",
    )
    parser.add_argument(
        "--journal-lag",
        type=float,
        default=0.0,
        help="seconds before a message shows in the journal (GREEN API: up to 120; default 0)",
    )
    parser.add_argument(
        "--send-rate",
        type=int,
        default=0,
        help="calls per second each send method answers per instance before 429 (default 0 = unlimited)",
    )
    parser.add_argument(
        "--send-delay-ms",
        type=int,
        default=None,
        help="milliseconds between sent messages (default: each instance's delaySendMessagesMilliseconds)",
    )
    parser.add_argument(
        "--failing-chats",
        default="",
        metavar="CHAT_ID,...",
        help="chat ids every send to fails (status noAccount for @c.us, failed for @g.us)",
    )


def _run_simulator(args: argparse.Namespace) -> int:
    from greenq.core.logs import configure_logging
    from greenq.simulator.config import SimulatorConfig, parse_instance_tokens
    from greenq.simulator.server import serve

    try:
        instances = parse_instance_tokens(args.instances)
    except ValueError as error:
        sys.stderr.write(f"greenq: --instances: {error}\n")
        return 2
    configure_logging(args.log_level)
    config = SimulatorConfig(
        instances=instances,
        host=args.host,
        port=args.port,
        webhook_timeout=args.webhook_timeout,
        webhook_pause=args.webhook_pause,
        journal_rate=args.journal_rate,
        journal_lag=args.journal_lag,
        send_rate=args.send_rate,
        send_delay_ms=args.send_delay_ms,
        failing_chats=frozenset(filter(None, (chat.strip() for chat in args.failing_chats.split(",")))),
    )
    sys.stdout.write(
        f"GREEN API simulator: apiUrl http://{args.host}:{args.port}, instances {sorted(instances)}\n"
    )
    sys.stdout.flush()
    serve(config)
    return 0
