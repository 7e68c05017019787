"""``greenq dlq``: list, show, replay, purge and trim dead letters from a terminal or a script."""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

import orjson

from greenq.cli import failed_jobs as failed_jobs_cli
from greenq.cli.context import EXIT_INCOMPLETE, EXIT_OK, EXIT_REFUSED, OpsContext, OpsHandler
from greenq.core.deadletters import replay as dlq
from greenq.core.deadletters.filter import DeadLetterFilter, TimeSpecError, parse_when
from greenq.core.deadletters.store import DeadLetter, DeadLetterStore, UnreadableDeadLetter
from greenq.core.outcomes import Outcome

Wrap = Callable[[OpsHandler], Callable[[argparse.Namespace], int]]

_ENTRY_ID = re.compile(r"^\d{1,20}(-\d{1,20})?$")
DEAD_LETTER_OUTCOMES = sorted(outcome.value for outcome in Outcome if outcome.is_dead_letter)
REASON_CHARS = 160


def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser], wrap: Wrap) -> None:
    """Add ``greenq dlq ...``; ``wrap`` turns a handler into a command (settings, Redis, errors)."""
    parser = commands.add_parser("dlq", help="inspect, replay, purge and trim dead letters")
    actions = parser.add_subparsers(required=True, metavar="ACTION")

    listing = actions.add_parser("list", help="one line per dead letter, oldest first")
    _add_filters(listing)
    listing.add_argument("--limit", type=_positive, default=100, help="at most N entries (default 100)")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    listing.set_defaults(run=wrap(_list))

    show = actions.add_parser("show", help="everything about one dead letter, with its full body")
    show.add_argument("entry_id", type=_entry_id, metavar="ID")
    show.add_argument("--json", action="store_true", help="the entry as one JSON object")
    show.set_defaults(run=wrap(_show))

    replay = actions.add_parser("replay", help="re-enqueue dead letters for validation and handling again")
    _add_selection(replay)
    replay.set_defaults(run=wrap(_replay))

    purge = actions.add_parser("purge", help="delete dead letters (asks first)")
    _add_selection(purge)
    purge.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    purge.set_defaults(run=wrap(_purge))

    trim = actions.add_parser("trim", help="delete dead letters older than the retention")
    trim.add_argument(
        "--retention-days",
        type=_non_negative,
        help="override GREENQ_DEAD_LETTER_RETENTION_DAYS for this run (0 = keep forever)",
    )
    trim.set_defaults(run=wrap(_trim))

    failed_jobs_cli.add_parser(actions, wrap)


def _add_filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--outcome", action="append", choices=DEAD_LETTER_OUTCOMES, help="this outcome (repeatable)"
    )
    parser.add_argument("--type", dest="type_webhook", metavar="TYPE_WEBHOOK", help="this typeWebhook")
    parser.add_argument("--instance", type=int, metavar="ID_INSTANCE", help="this idInstance")
    parser.add_argument("--since", type=_when, help="dead-lettered at or after: ISO-8601 or an age (1h, 7d)")
    parser.add_argument("--until", type=_when, help="dead-lettered at or before: ISO-8601 or an age")


def _add_selection(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("entry_ids", nargs="*", type=_entry_id, metavar="ID", help="these entries")
    _add_filters(parser)
    parser.add_argument("--all", action="store_true", help="every dead letter (or every one matching)")
    parser.add_argument("--limit", type=_positive, help="at most N entries, oldest first")


def _criteria(args: argparse.Namespace) -> DeadLetterFilter:
    return DeadLetterFilter(
        outcomes=frozenset(args.outcome or ()),
        type_webhook=args.type_webhook,
        id_instance=args.instance,
        since=args.since,
        until=args.until,
    )


def _selection_problem(args: argparse.Namespace, criteria: DeadLetterFilter) -> str | None:
    """Why the arguments do not say unambiguously which entries to act on, or None."""
    if args.entry_ids and (args.all or not criteria.is_empty or args.limit is not None):
        return "give either IDs, or a filter / --all, not both"
    if not args.entry_ids and criteria.is_empty and not args.all:
        return (
            "say which dead letters: IDs, a filter (--outcome, --type, --instance, --since, --until) or --all"
        )
    return None


def _list(args: argparse.Namespace, ctx: OpsContext) -> int:
    store = DeadLetterStore(ctx.redis)
    try:
        for letter in dlq.select(store, _criteria(args), args.limit):
            if args.json:
                ctx.out.write(orjson.dumps(_summary(letter)).decode() + "\n")
            else:
                ctx.out.write(_line(letter) + "\n")
    except UnreadableDeadLetter as error:
        return _unreadable(ctx, error)
    return EXIT_OK


def _show(args: argparse.Namespace, ctx: OpsContext) -> int:
    try:
        letter = DeadLetterStore(ctx.redis).get(args.entry_id)
    except UnreadableDeadLetter as error:
        return _unreadable(ctx, error)
    if letter is None:
        ctx.err.write(f"greenq: no dead letter {args.entry_id}\n")
        return EXIT_INCOMPLETE
    if args.json:
        ctx.out.write(orjson.dumps(_full(letter), option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        ctx.out.write(_details(letter) + "\n")
    return EXIT_OK


def _replay(args: argparse.Namespace, ctx: OpsContext) -> int:
    criteria = _criteria(args)
    problem = _selection_problem(args, criteria)
    if problem:
        ctx.err.write(f"greenq dlq replay: {problem}\n")
        return EXIT_REFUSED
    store = DeadLetterStore(ctx.redis)
    report = dlq.ReplayReport()
    letters: Iterable[DeadLetter] = (
        dlq.by_ids(store, args.entry_ids, report)
        if args.entry_ids
        else dlq.select(store, criteria, args.limit)
    )
    try:
        dlq.replay(ctx.redis, letters, store, report)
    except UnreadableDeadLetter as error:
        ctx.out.write(f"replayed {len(report.replayed)}\n")
        return _unreadable(ctx, error)
    ctx.out.write(f"replayed {len(report.replayed)}\n")
    if report.missing:
        ctx.out.write(f"not found {len(report.missing)}: {' '.join(report.missing)}\n")
    if report.error is not None:
        entry_id, reason = report.error
        ctx.err.write(f"greenq: replay stopped at {entry_id} (kept): {reason}\n")
    return EXIT_OK if report.error is None and not report.missing else EXIT_INCOMPLETE


def _purge(args: argparse.Namespace, ctx: OpsContext) -> int:
    criteria = _criteria(args)
    problem = _selection_problem(args, criteria)
    if problem:
        ctx.err.write(f"greenq dlq purge: {problem}\n")
        return EXIT_REFUSED
    store = DeadLetterStore(ctx.redis)
    if args.all and criteria.is_empty and args.limit is None:
        return _purge_everything(args, ctx, store)
    try:
        entry_ids = list(args.entry_ids) or [
            str(letter.entry_id) for letter in dlq.select(store, criteria, args.limit)
        ]
    except UnreadableDeadLetter as error:
        return _unreadable(ctx, error)
    if not entry_ids:
        ctx.out.write("purged 0 (nothing matches)\n")
        return EXIT_OK
    what = " ".join(entry_ids) if args.entry_ids else f"matching {criteria.describe()}"
    if not _confirm(args, ctx, f"delete {len(entry_ids)} dead letter(s) {what}"):
        return EXIT_REFUSED
    ctx.out.write(f"purged {dlq.purge(store, entry_ids)}\n")
    return EXIT_OK


def _purge_everything(args: argparse.Namespace, ctx: OpsContext, store: DeadLetterStore) -> int:
    """Everything up to the newest entry seen when asking; letters arriving meanwhile are kept."""
    newest = store.last_id()
    if newest is None:
        ctx.out.write("purged 0 (the dead-letter stream is empty)\n")
        return EXIT_OK
    if not _confirm(args, ctx, f"delete ALL {store.size()} dead letters (through {newest})"):
        return EXIT_REFUSED
    ctx.out.write(f"purged {store.remove_through(newest)}\n")
    return EXIT_OK


def _trim(args: argparse.Namespace, ctx: OpsContext) -> int:
    days = ctx.settings.dead_letter_retention_days if args.retention_days is None else args.retention_days
    removed = dlq.trim_dead_letters(ctx.redis, days)
    if days == 0:
        ctx.out.write("trimmed 0 (retention is 0: dead letters are kept forever)\n")
    else:
        ctx.out.write(f"trimmed {removed} (older than {days} days)\n")
    return EXIT_OK


def _confirm(args: argparse.Namespace, ctx: OpsContext, action: str) -> bool:
    """True with ``--yes`` or a 'yes' typed on a terminal; without a terminal it refuses."""
    if args.yes:
        return True
    if not ctx.stdin.isatty():
        ctx.err.write(f"greenq: refusing to {action}: no terminal to confirm on; pass --yes\n")
        return False
    ctx.out.write(f"{action}? Type 'yes' to continue: ")
    ctx.out.flush()
    answer = ctx.stdin.readline(16).strip().lower()
    if answer in ("y", "yes"):
        return True
    ctx.out.write("nothing deleted\n")
    return False


def _unreadable(ctx: OpsContext, error: UnreadableDeadLetter) -> int:
    ctx.err.write(f"greenq: {error} (remove it with: greenq dlq purge {error.entry_id})\n")
    return EXIT_INCOMPLETE


def _stamp(entry_id: str | None, fallback: float) -> str:
    """When the entry was written: its stream id is the millisecond timestamp."""
    millis = int(entry_id.partition("-")[0]) if entry_id else int(fallback * 1000)
    return datetime.fromtimestamp(millis / 1000, UTC).isoformat(timespec="seconds")


def _line(letter: DeadLetter) -> str:
    reason = letter.reasons[0] if letter.reasons else "-"
    reason = " ".join(reason.split())[:REASON_CHARS]
    instance = "-" if letter.id_instance is None else str(letter.id_instance)
    return "  ".join(
        (
            str(letter.entry_id),
            _stamp(letter.entry_id, letter.failed_at),
            f"{letter.outcome.value:<12}",
            letter.type_webhook or "-",
            instance,
            reason,
        )
    )


def _summary(letter: DeadLetter) -> dict[str, Any]:
    return {
        "id": letter.entry_id,
        "time": _stamp(letter.entry_id, letter.failed_at),
        "outcome": letter.outcome.value,
        "typeWebhook": letter.type_webhook,
        "idInstance": letter.id_instance,
        "reason": letter.reasons[0] if letter.reasons else None,
    }


def _full(letter: DeadLetter) -> dict[str, Any]:
    return {
        **_summary(letter),
        "reasons": list(letter.reasons),
        "failed_at": letter.failed_at,
        "envelope": letter.envelope.to_wire(),
    }


def _details(letter: DeadLetter) -> str:
    envelope = letter.envelope
    pending = ", ".join(envelope.pending_handlers) if envelope.pending_handlers is not None else "all"
    lines = [
        f"id           {letter.entry_id}",
        f"failed at    {_iso(letter.failed_at)}",
        f"outcome      {letter.outcome.value}",
        f"typeWebhook  {letter.type_webhook or '-'}",
        f"idInstance   {'-' if letter.id_instance is None else letter.id_instance}",
        "reasons",
        *(f"  - {reason}" for reason in letter.reasons),
        "envelope",
        f"  source       {envelope.source}",
        f"  received at  {_iso(envelope.received_at)}",
        f"  request id   {envelope.request_id}",
        f"  token name   {envelope.token_id or '-'}",
        f"  attempt      {envelope.attempt}",
        f"  handlers     {pending}",
        f"  version      {envelope.version}",
        f"  body         {len(envelope.raw_body)} bytes, stored as {envelope.body_encoding}",
        "body (base64: the received bytes are not UTF-8)" if envelope.body_encoding == "base64" else "body",
        envelope.body if envelope.body_encoding == "base64" else _pretty(envelope.body),
    ]
    return "\n".join(lines)


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds")


def _pretty(body: str) -> str:
    """The body as indented JSON; as received when it is not JSON (e.g. an ``invalid`` unreadable body)."""
    try:
        return orjson.dumps(orjson.loads(body), option=orjson.OPT_INDENT_2).decode()
    except orjson.JSONDecodeError:
        return body


def _entry_id(text: str) -> str:
    if not _ENTRY_ID.match(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a stream id (like 1714560000000-0)")
    return text


def _when(text: str) -> datetime:
    try:
        return parse_when(text)
    except TimeSpecError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _positive(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {value}")
    return value


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value
