"""The ``greenq`` command: every sub-command registers itself; settings errors end here."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from greenq.cli import ingress as ingress_cli
from greenq.cli import ops as ops_cli
from greenq.cli import pull as poller_cli
from greenq.cli import send as sender_cli
from greenq.cli import simulator as simulator_cli
from greenq.cli import up as up_cli
from greenq.cli import validate as validate_cli
from greenq.cli import worker as worker_cli
from greenq.core.settings import MissingRedisUrl

#: The modules whose ``register`` adds sub-commands, in the order ``greenq --help`` lists them.
COMMAND_MODULES = (
    ingress_cli,
    worker_cli,
    validate_cli,
    up_cli,
    ops_cli,
    poller_cli,
    sender_cli,
    simulator_cli,
)


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
    for module in COMMAND_MODULES:
        module.register(commands)
    return parser
