"""Committing a batch exactly once: WATCH the claims, decide, then one MULTI/EXEC, with its replies checked.

The batch reads every item's claim keys under WATCH, decides each item (handlers run here, their writes
buffered), and commits everything in one MULTI/EXEC. If another worker committed one of the same claims
meanwhile, EXEC is refused (WatchError) and the batch is decided again from the new claims. redis-py never
re-sends a transaction while keys are watched (a lost reply surfaces as WatchError too), so a re-sent EXEC
cannot apply effects twice: the next attempt finds this unit's own claim and skips it.

EXEC applies every command it can: a command that fails inside it (e.g. WRONGTYPE from a handler's write)
does not undo the others. Its reply is checked per item, and such items are reported back to the caller.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from redis import Redis
from redis.client import Pipeline
from redis.exceptions import RedisError, WatchError

from greenq.core import checkpoints, keys
from greenq.workers.claims import Claimed
from greenq.workers.items import Item, Owner

#: Commit attempts (claim conflicts or a connection lost mid-transaction) before the job itself fails.
COMMIT_ATTEMPTS = 8


class CommitAborted(RedisError):
    """The batch could not commit in :data:`COMMIT_ATTEMPTS` attempts; RQ re-runs the job later."""


@dataclass
class WriteFailure:
    """An item whose writes Redis refused inside EXEC (its other writes were applied)."""

    item: Item
    errors: list[tuple[Owner, Exception]]


Decide = Callable[[Item], None]


def commit_batch(redis: Redis, read: list[Item], decide: Decide) -> tuple[list[Item], list[WriteFailure]]:
    """Decide and commit the batch; returns the committed items and the ones EXEC partly refused."""
    last: Exception | None = None
    for _ in range(COMMIT_ATTEMPTS):
        items = [item.fresh() for item in read]
        try:
            return items, _attempt(redis, items, decide)
        except WatchError as error:
            last = error
    raise CommitAborted(f"batch did not commit after {COMMIT_ATTEMPTS} attempts: {last}")


def _attempt(redis: Redis, items: list[Item], decide: Decide) -> list[WriteFailure]:
    if not items:
        return []
    with redis.pipeline(transaction=True) as pipe:
        watched = [key for item in items for key in item.claim.watched]
        pipe.watch(*watched)  # type: ignore[no-untyped-call]
        values: dict[str, bytes | None] = dict(zip(watched, pipe.mget(watched), strict=True))  # type: ignore[arg-type]
        _settle_claims(items, values)
        for item in items:
            decide(item)  # an already committed unit decides nothing, but may still owe bookkeeping
        checkpoints.reached(checkpoints.HANDLERS_RAN)
        pipe.multi()
        for item in items:
            for write in item.writes:
                pipe.pipeline_execute_command(*write.args, **write.options)
        _count_outcomes(items, pipe)
        replies = pipe.execute(raise_on_error=False)
    checkpoints.reached(checkpoints.COMMITTED)
    if any(item.retry_in is not None for item in items):
        checkpoints.reached(checkpoints.RETRY_SCHEDULED)
    return _refused(items, replies)


def _settle_claims(items: list[Item], values: dict[str, bytes | None]) -> None:
    """Each item's claim state; a notification twice in one batch is a resend the second time."""
    taken: set[str] = set()
    for item in items:
        claim = item.claim
        content = values[claim.content_key] if claim.content_key is not None else None
        item.claimed = claim.state(values[claim.unit_key], content)
        if item.claimed is Claimed.FREE and claim.content_key in taken:
            item.claimed = Claimed.RESEND
        if item.claimed is not Claimed.DONE and claim.unit_key in taken:
            item.claimed = Claimed.DONE  # the same unit twice in one job: one of them is enough
        taken.update(claim.watched)


def _count_outcomes(items: list[Item], pipe: Pipeline) -> None:
    counts = Counter(
        item.result.value for item in items if item.result is not None and not item.already_committed
    )
    for outcome, count in counts.items():
        pipe.hincrby(keys.OUTCOME_COUNTS, outcome, count)


def _refused(items: list[Item], replies: list[object]) -> list[WriteFailure]:
    """Items whose commands failed inside EXEC (replies are in the order the writes were queued)."""
    failures: list[WriteFailure] = []
    if not any(isinstance(reply, Exception) for reply in replies):
        return failures
    remaining = iter(replies)
    for item in items:
        errors = [
            (write.owner, reply)
            for write, reply in zip(item.writes, remaining, strict=False)  # writes first
            if isinstance(reply, Exception)
        ]
        if errors:
            failures.append(WriteFailure(item, errors))
    return failures
