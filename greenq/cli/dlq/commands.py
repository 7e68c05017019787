"""What each ``greenq dlq`` action does, through ``greenq.core.deadletters``; exit codes as in the context."""

from __future__ import annotations

import argparse
from collections.abc import Iterable

import orjson

from greenq.cli.context import EXIT_INCOMPLETE, EXIT_OK, EXIT_REFUSED, OpsContext
from greenq.cli.dlq import render
from greenq.cli.dlq.arguments import criteria, selection_problem
from greenq.core.contract import producer_queue
from greenq.core.deadletters import (
    DeadLetter,
    DeadLetterFilter,
    DeadLetterStore,
    UnreadableDeadLetter,
    import_failed_jobs,
    select,
    trim_dead_letters,
)
from greenq.core.deadletters.replay import ReplayReport, by_ids, replay


def list_letters(args: argparse.Namespace, ctx: OpsContext) -> int:
    store = DeadLetterStore(ctx.redis)
    try:
        for letter in select(store, criteria(args), args.limit):
            if args.json:
                ctx.out.write(orjson.dumps(render.summary(letter)).decode() + "\n")
            else:
                ctx.out.write(render.line(letter) + "\n")
    except UnreadableDeadLetter as error:
        return _unreadable(ctx, error)
    return EXIT_OK


def show_letter(args: argparse.Namespace, ctx: OpsContext) -> int:
    try:
        letter = DeadLetterStore(ctx.redis).get(args.entry_id)
    except UnreadableDeadLetter as error:
        return _unreadable(ctx, error)
    if letter is None:
        ctx.err.write(f"greenq: no dead letter {args.entry_id}\n")
        return EXIT_INCOMPLETE
    if args.json:
        ctx.out.write(orjson.dumps(render.full(letter), option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        ctx.out.write(render.details(letter) + "\n")
    return EXIT_OK


def replay_letters(args: argparse.Namespace, ctx: OpsContext) -> int:
    chosen = _selected(args, ctx, "replay")
    if chosen is None:
        return EXIT_REFUSED
    store = DeadLetterStore(ctx.redis)
    report = ReplayReport()
    letters: Iterable[DeadLetter] = (
        by_ids(store, args.entry_ids, report) if args.entry_ids else select(store, chosen, args.limit)
    )
    try:
        replay(ctx.redis, producer_queue(ctx.settings, ctx.redis), letters, store, report)
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


def purge_letters(args: argparse.Namespace, ctx: OpsContext) -> int:
    chosen = _selected(args, ctx, "purge")
    if chosen is None:
        return EXIT_REFUSED
    store = DeadLetterStore(ctx.redis)
    if args.all and chosen.is_empty and args.limit is None:
        return _purge_everything(args, ctx, store)
    try:
        entry_ids = list(args.entry_ids) or [
            str(letter.entry_id) for letter in select(store, chosen, args.limit)
        ]
    except UnreadableDeadLetter as error:
        return _unreadable(ctx, error)
    if not entry_ids:
        ctx.out.write("purged 0 (nothing matches)\n")
        return EXIT_OK
    what = " ".join(entry_ids) if args.entry_ids else f"matching {chosen.describe()}"
    if not _confirm(args, ctx, f"delete {len(entry_ids)} dead letter(s) {what}"):
        return EXIT_REFUSED
    ctx.out.write(f"purged {store.remove(*entry_ids)}\n")
    return EXIT_OK


def _selected(args: argparse.Namespace, ctx: OpsContext, action: str) -> DeadLetterFilter | None:
    """The filter the arguments give; None (after saying why) when they do not say which entries."""
    chosen = criteria(args)
    problem = selection_problem(args, chosen)
    if problem:
        ctx.err.write(f"greenq dlq {action}: {problem}\n")
        return None
    return chosen


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


def trim_letters(args: argparse.Namespace, ctx: OpsContext) -> int:
    days = ctx.settings.dead_letter_retention_days if args.retention_days is None else args.retention_days
    removed = trim_dead_letters(ctx.redis, days)
    if days == 0:
        ctx.out.write("trimmed 0 (retention is 0: dead letters are kept forever)\n")
    else:
        ctx.out.write(f"trimmed {removed} (older than {days} days)\n")
    return EXIT_OK


def import_failed(args: argparse.Namespace, ctx: OpsContext) -> int:
    """RQ's failed registry into the dead-letter stream, before RQ expires it."""
    report = import_failed_jobs(ctx.redis, limit=args.limit)
    ctx.out.write(f"imported {report.jobs} failed job(s) as {report.dead_letters} dead letter(s)\n")
    if report.skipped:
        ctx.out.write(f"skipped {len(report.skipped)} (expired or taken by another import)\n")
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
