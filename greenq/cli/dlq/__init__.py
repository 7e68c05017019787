"""``greenq dlq``: list, show, replay, purge, trim and import dead letters from a terminal or a script.

This module wires the sub-commands; :mod:`.arguments` parses, :mod:`.commands` acts through
``greenq.core.deadletters``, :mod:`.render` prints.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TypeAlias

from greenq.cli.context import OpsHandler
from greenq.cli.dlq.arguments import add_filters, add_selection, entry_id, non_negative, positive
from greenq.cli.dlq.commands import (
    import_failed,
    list_letters,
    purge_letters,
    replay_letters,
    show_letter,
    trim_letters,
)

#: Turns a handler into an argparse ``run`` (settings, one Redis client, clean errors).
Wrap = Callable[[OpsHandler], Callable[[argparse.Namespace], int]]
#: What ``add_subparsers`` returns (subscripted for type checkers only).
Actions: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def add_parsers(commands: Actions, wrap: Wrap) -> None:
    """Add ``greenq dlq ...`` to the ``greenq`` command."""
    parser = commands.add_parser("dlq", help="inspect, replay, purge and trim dead letters")
    actions = parser.add_subparsers(required=True, metavar="ACTION")
    _add_reading(actions, wrap)
    _add_acting(actions, wrap)


def _add_reading(actions: Actions, wrap: Wrap) -> None:
    listing = actions.add_parser("list", help="one line per dead letter, oldest first")
    add_filters(listing)
    listing.add_argument("--limit", type=positive, default=100, help="at most N entries (default 100)")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    listing.set_defaults(run=wrap(list_letters))

    show = actions.add_parser("show", help="everything about one dead letter, with its full body")
    show.add_argument("entry_id", type=entry_id, metavar="ID")
    show.add_argument("--json", action="store_true", help="the entry as one JSON object")
    show.set_defaults(run=wrap(show_letter))


def _add_acting(actions: Actions, wrap: Wrap) -> None:
    replay = actions.add_parser("replay", help="re-enqueue dead letters for validation and handling again")
    add_selection(replay)
    replay.set_defaults(run=wrap(replay_letters))

    purge = actions.add_parser("purge", help="delete dead letters (asks first)")
    add_selection(purge)
    purge.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    purge.set_defaults(run=wrap(purge_letters))

    trim = actions.add_parser("trim", help="delete dead letters older than the retention")
    trim.add_argument(
        "--retention-days",
        type=non_negative,
        help="override GREENQ_DEAD_LETTER_RETENTION_DAYS for this run (0 = keep forever)",
    )
    trim.set_defaults(run=wrap(trim_letters))

    imports = actions.add_parser(
        "import-failed",
        help="turn jobs in RQ's failed registry into `failed` dead letters (then list / replay them)",
    )
    imports.add_argument("--limit", type=int, help="at most N jobs, oldest first")
    imports.set_defaults(run=wrap(import_failed))
