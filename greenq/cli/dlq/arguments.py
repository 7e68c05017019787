"""The arguments of ``greenq dlq``: filters, a selection (IDs, a filter or ``--all``) and their types."""

from __future__ import annotations

import argparse
import re
from datetime import datetime

from greenq.core.deadletters import DeadLetterFilter, TimeSpecError, parse_when
from greenq.core.outcomes import Outcome

_ENTRY_ID = re.compile(r"^\d{1,20}(-\d{1,20})?$")
DEAD_LETTER_OUTCOMES = sorted(outcome.value for outcome in Outcome if outcome.is_dead_letter)


def add_filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--outcome", action="append", choices=DEAD_LETTER_OUTCOMES, help="this outcome (repeatable)"
    )
    parser.add_argument("--type", dest="type_webhook", metavar="TYPE_WEBHOOK", help="this typeWebhook")
    parser.add_argument("--instance", type=int, metavar="ID_INSTANCE", help="this idInstance")
    parser.add_argument("--since", type=_when, help="dead-lettered at or after: ISO-8601 or an age (1h, 7d)")
    parser.add_argument("--until", type=_when, help="dead-lettered at or before: ISO-8601 or an age")


def add_selection(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("entry_ids", nargs="*", type=entry_id, metavar="ID", help="these entries")
    add_filters(parser)
    parser.add_argument("--all", action="store_true", help="every dead letter (or every one matching)")
    parser.add_argument("--limit", type=positive, help="at most N entries, oldest first")


def criteria(args: argparse.Namespace) -> DeadLetterFilter:
    """The filter the arguments describe (empty when none was given)."""
    return DeadLetterFilter(
        outcomes=frozenset(args.outcome or ()),
        type_webhook=args.type_webhook,
        id_instance=args.instance,
        since=args.since,
        until=args.until,
    )


def selection_problem(args: argparse.Namespace, chosen: DeadLetterFilter) -> str | None:
    """Why the arguments do not say unambiguously which entries to act on, or None."""
    if args.entry_ids and (args.all or not chosen.is_empty or args.limit is not None):
        return "give either IDs, or a filter / --all, not both"
    if not args.entry_ids and chosen.is_empty and not args.all:
        return (
            "say which dead letters: IDs, a filter (--outcome, --type, --instance, --since, --until) or --all"
        )
    return None


def entry_id(text: str) -> str:
    if not _ENTRY_ID.match(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a stream id (like 1714560000000-0)")
    return text


def _when(text: str) -> datetime:
    try:
        return parse_when(text)
    except TimeSpecError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def positive(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {value}")
    return value


def non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value
