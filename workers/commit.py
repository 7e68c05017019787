"""Committing a batch exactly once: WATCH the claims, decide, then one MULTI/EXEC, with its replies checked.

The batch reads every notification's claim keys and its chat's (and sender's) state
(``greenq.workers.state``) under WATCH, decides each one from its read, its claim state and its states
(handlers run here; their writes, state changes and outbox entries included, are carried by the Decision)
and commits every decision's writes in one MULTI/EXEC. If another worker committed one of the same claims
meanwhile, EXEC is refused (WatchError) and the batch is decided again from the new claims: the reads are
immutable, so each attempt starts from the same values. redis-py never re-sends a transaction while keys
are watched (a lost reply surfaces as WatchError too), so a re-sent EXEC cannot apply effects twice: the
next attempt finds this unit's own claim and skips it. Ordered mode (``commit_fresh``) reads its batch again
on every attempt instead: its decisions also move entries between the partition's stream, parked lists and
held hash, which only the claims of the units they touch would not tell apart after a lost reply.

EXEC applies every command it can: a command that fails inside it (e.g. WRONGTYPE from a handler's write)
does not undo the others. Its reply is checked per notification; those are reported back to the caller.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from redis import Redis
from redis.client import Pipeline
from redis.exceptions import RedisError, WatchError

from greenq.core import checkpoints, keys
from greenq.workers.claims import Claimed
from greenq.workers.results import Decided, Decision, Owner, Read, Retry, Settled, Valid, Writes
from greenq.workers.state import ChatStates, state_reads

#: Commit attempts (claim conflicts or a connection lost mid-transaction) before the job itself fails.
COMMIT_ATTEMPTS = 8


class CommitAborted(RedisError):
    """The batch could not commit in :data:`COMMIT_ATTEMPTS` attempts; RQ re-runs the job later."""


@dataclass(frozen=True, slots=True)
class WriteFailure:
    """A notification whose writes Redis refused inside EXEC (its other writes were applied)."""

    settled: Settled
    errors: tuple[tuple[Owner, Exception], ...]


#: Decides one notification from its read and its claim state (called again on every commit attempt).
Decide = Callable[[Read, Claimed], Decision]

#: Decides one notification of a commit attempt, given also its chats' state as the batch left it so far.
DecideInBatch = Callable[[Read, Claimed, ChatStates], Decision]


@dataclass(frozen=True, slots=True)
class Commit:
    """A committed batch: every notification with its decision, and those whose writes EXEC partly refused."""

    settled: list[Settled]
    refused: list[WriteFailure]


#: The writes a commit attempt adds after every decision's, asked for once they are all made (ordered mode:
#: one XACK and one XDEL for every stream entry of the batch).
BatchWrites = Callable[[], Writes]

#: Reads one commit attempt's batch, its way of deciding and its own writes, on the attempt's connection,
#: before the claims are WATCHed: it may WATCH the keys its reads depend on, so that a change to them
#: refuses the attempt.
ReadAttempt = Callable[[Pipeline], tuple[Sequence[Read], DecideInBatch, BatchWrites]]


def commit_batch(redis: Redis, reads: Sequence[Read], decide: DecideInBatch) -> Commit:
    """Decide and commit the batch, deciding again from the new claims while another commit wins."""
    return commit_fresh(redis, lambda _: (reads, decide, lambda: ()))


def commit_fresh(redis: Redis, read: ReadAttempt) -> Commit:
    """Like :func:`commit_batch`, but every attempt reads its batch afresh: what a refused attempt left and
    what an attempt whose reply was lost applied are then read from Redis, never assumed."""
    last: Exception | None = None
    for _ in range(COMMIT_ATTEMPTS):
        try:
            return _attempt(redis, read)
        except WatchError as error:
            last = error
    raise CommitAborted(f"batch did not commit after {COMMIT_ATTEMPTS} attempts: {last}")


def _attempt(redis: Redis, read: ReadAttempt) -> Commit:
    with redis.pipeline(transaction=True) as pipe:
        reads, decide, batch_writes = read(pipe)
        if not reads:
            return Commit([], [])
        claimed = [key for read in reads for key in read.claim.watched]
        chats = _state_keys(reads, "state_key")
        members = _state_keys(reads, "sender_state_key")
        # A state committed meanwhile refuses this attempt; only chat state has an older key to fall back to.
        watched = claimed + state_reads(chats) + members
        pipe.watch(*watched)  # type: ignore[no-untyped-call]
        values: dict[str, bytes | None] = dict(zip(watched, pipe.mget(watched), strict=True))  # type: ignore[arg-type]
        claims = settle_claims(reads, values)
        states = ChatStates.read([*chats, *members], values)
        # An already committed unit decides nothing, but may still owe bookkeeping (ordered mode).
        settled = [
            Settled(read, decide(read, claim, states)) for read, claim in zip(reads, claims, strict=True)
        ]
        checkpoints.reached(checkpoints.HANDLERS_RAN)
        pipe.multi()
        for write in (*(write for one in settled for write in one.decision.writes), *batch_writes()):
            pipe.pipeline_execute_command(*write.args, **write.options)
        _count_outcomes(settled, pipe)
        replies = pipe.execute(raise_on_error=False)
    checkpoints.reached(checkpoints.COMMITTED)
    if any(isinstance(one.decision, Retry) for one in settled):
        checkpoints.reached(checkpoints.RETRY_SCHEDULED)
    return Commit(settled, _refused(settled, replies))


def _state_keys(reads: Sequence[Read], field: str) -> list[str]:
    """The distinct state documents (``state_key`` of chats, ``sender_state_key`` of members) of a batch."""
    found = (getattr(read, field) for read in reads if isinstance(read, Valid))
    return list(dict.fromkeys(key for key in found if key))


def settle_claims(reads: Sequence[Read], values: dict[str, bytes | None]) -> list[Claimed]:
    """Each notification's claim state; one twice in a batch is a resend the second time."""
    taken: set[str] = set()
    states: list[Claimed] = []
    for read in reads:
        claim = read.claim
        content = values[claim.content_key] if claim.content_key is not None else None
        state = claim.state(values[claim.unit_key], content)
        if state is Claimed.FREE and claim.content_key in taken:
            state = Claimed.RESEND
        if state is not Claimed.DONE and claim.unit_key in taken:
            state = Claimed.DONE  # the same unit twice in one job: one of them is enough
        taken.update(claim.watched)
        states.append(state)
    return states


def _count_outcomes(settled: list[Settled], pipe: Pipeline) -> None:
    counts = Counter(one.decision.outcome.value for one in settled if isinstance(one.decision, Decided))
    for outcome, count in counts.items():
        pipe.hincrby(keys.OUTCOME_COUNTS, outcome, count)


def _refused(settled: list[Settled], replies: list[object]) -> list[WriteFailure]:
    """Notifications whose commands failed inside EXEC (replies are in the order the writes were queued)."""
    failures: list[WriteFailure] = []
    if not any(isinstance(reply, Exception) for reply in replies):
        return failures
    remaining = iter(replies)
    for one in settled:
        errors = tuple(
            (write.owner, reply)
            for write, reply in zip(one.decision.writes, remaining, strict=False)  # writes first
            if isinstance(reply, Exception)
        )
        if errors:
            failures.append(WriteFailure(one, errors))
    return failures
