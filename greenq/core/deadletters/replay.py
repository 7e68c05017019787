"""Replaying dead letters: each one back on the notification queue, and out of the stream, exactly once.

Replay puts the original body back on the notification queue as a ``replay`` envelope, so a worker
validates it again with the schemas and handlers it has *now*: a schema or handler fix drains the dead
letter. In ordered mode a replay is a new acceptance: the envelope is appended to its chat's partition
behind everything of that chat accepted before the replay. The enqueue (a job, or one partition's entry)
and the deletion of the entry commit together in one MULTI/EXEC, so a replayed
notification is neither lost nor queued twice: a replay first takes a short lock on the entry (SET NX) and
checks, under WATCH, that the entry still exists, so two shells replaying the same entry enqueue it once,
and a lost EXEC reply is never re-sent. An ``unsent`` letter (the sender's) goes back onto its outbox stream
instead (:mod:`.unsent`), in the same transaction. The envelope names its entry (``replay_of``): the
worker claims each replay once, even if its job runs twice.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from redis import Redis
from redis.exceptions import RedisError

from greenq.core import checkpoints, keys
from greenq.core.contract import Enqueued, Envelope, ProducerQueue
from greenq.core.deadletters.store import DeadLetter, DeadLetterStore
from greenq.core.deadletters.unsent import resend_in
from greenq.core.logs import fields
from greenq.core.outcomes import Outcome

log = logging.getLogger("greenq.dlq")

#: Seconds a replay's lock on one entry lives if the replaying process dies holding it. It only has to cover
#: one check and one EXEC; should it ever expire early, the worker still claims each replay once.
REPLAY_LOCK_SECONDS = 5


def replay_envelope(letter: DeadLetter) -> Envelope:
    """The envelope a replay enqueues: same body, request id and token name; a fresh set of retries.

    A ``failed`` entry keeps its pending handlers, so handlers that already succeeded are not re-run. A
    ``too_large`` entry is parsed on replay: the operator asked for it, whatever its size.
    """
    original = letter.envelope
    return Envelope(
        body=original.body,
        body_encoding=original.body_encoding,
        source="replay",
        received_at=original.received_at,
        request_id=original.request_id,
        token_id=original.token_id,
        attempt=1,
        pending_handlers=original.pending_handlers,
        replay_of=letter.entry_id,
    )


@dataclass
class ReplayReport:
    """What a replay did: entries re-enqueued (and removed), and the one that stopped it, if any."""

    replayed: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    error: tuple[str, str] | None = None


def replay(
    connection: Redis,
    queue: ProducerQueue,
    letters: Iterable[DeadLetter],
    store: DeadLetterStore | None = None,
    report: ReplayReport | None = None,
) -> ReplayReport:
    """Re-enqueue each letter through ``queue`` and delete it in one MULTI; stops at the first Redis error.

    EXEC applies both or neither when the connection or memory fails. A command that fails inside EXEC
    (e.g. WRONGTYPE on a damaged queue key) does not undo the others, so a letter whose job did not make
    it is written back (under a new id) rather than lost.
    """
    store = store if store is not None else DeadLetterStore(connection)
    report = report if report is not None else ReplayReport()
    for letter in letters:
        if not _replay_into(report, connection, queue, store, letter):
            break
    return report


def _replay_into(
    report: ReplayReport,
    connection: Redis,
    queue: ProducerQueue,
    store: DeadLetterStore,
    letter: DeadLetter,
) -> bool:
    """Replay one letter and note the result in ``report``; False when the replay has to stop here."""
    assert letter.entry_id is not None  # letters read from the store always carry their id
    try:
        enqueued = _replay_once(connection, queue, store, letter)
    except _Gone:
        report.missing.append(letter.entry_id)
        return True
    except _PartialReplay as error:
        report.error = (letter.entry_id, str(error))
        return False
    except RedisError as error:
        report.error = (letter.entry_id, f"{_name(error)}; the dead letter is kept")
        return False
    report.replayed.append(letter.entry_id)
    _log_replayed(letter, enqueued)
    return True


def _log_replayed(letter: DeadLetter, enqueued: Enqueued) -> None:
    log.info(
        "dead letter replayed",
        extra=fields(
            entry_id=letter.entry_id,
            enqueued_as=enqueued.ref,
            outcome=letter.outcome.value,
            typeWebhook=letter.type_webhook,
            idInstance=letter.id_instance,
            request_id=letter.envelope.request_id,
        ),
    )


class _PartialReplay(Exception):
    """EXEC ran but a command in it failed; the letter is back in the stream (maybe under a new id)."""


class _Gone(Exception):
    """Another replay (or a purge) took the entry first, or holds its lock right now."""


def _replay_once(
    connection: Redis, queue: ProducerQueue, store: DeadLetterStore, letter: DeadLetter
) -> Enqueued:
    """Replay ``letter`` unless another shell does: the lock makes the check-then-write exclusive."""
    assert letter.entry_id is not None
    lock = keys.replay_lock_key(letter.entry_id)
    if not connection.set(lock, 1, nx=True, ex=REPLAY_LOCK_SECONDS):
        raise _Gone
    try:
        return _enqueue_and_remove(connection, queue, store, letter, lock)
    finally:
        connection.delete(lock)


def _enqueue_and_remove(
    connection: Redis, queue: ProducerQueue, store: DeadLetterStore, letter: DeadLetter, lock: str
) -> Enqueued:
    """One transaction: the replay's job (ordered mode: its partition's entry) and the XDEL of the letter;
    the dead-letter stream is a global key, so in ordered mode this MULTI holds it and one partition's."""
    assert letter.entry_id is not None
    with connection.pipeline(transaction=True) as pipe:
        pipe.watch(lock)  # type: ignore[no-untyped-call]  # a lost EXEC reply raises; never re-sent
        if store.get(letter.entry_id) is None:
            raise _Gone
        checkpoints.reached(checkpoints.REPLAY_LOCKED)
        pipe.multi()  # explicit, so the queue's writes go inside this transaction
        if letter.outcome is Outcome.UNSENT:  # an outbox entry: back onto its outbox stream
            enqueued = resend_in(pipe, letter)
        else:
            enqueued = queue.enqueue([replay_envelope(letter)], pipe)
        store.remove_in(pipe, letter.entry_id)
        results = pipe.execute(raise_on_error=False)
    checkpoints.reached(checkpoints.REPLAY_COMMITTED)
    queue.settle(enqueued)  # ordered mode: its partition's drain (never raises)
    failures = [result for result in results if isinstance(result, Exception)]
    if not failures:
        return enqueued
    kept = letter.entry_id
    if results[-1] == 1:  # the XDEL went through although the job did not: write the letter back
        kept = store.add(letter)
    raise _PartialReplay(f"{_name(failures[0])}; the dead letter is kept as {kept}")


def _name(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"


def by_ids(store: DeadLetterStore, entry_ids: Sequence[str], report: ReplayReport) -> Iterator[DeadLetter]:
    """The named entries in the given order; ids not in the stream are noted in ``report.missing``."""
    for entry_id in entry_ids:
        letter = store.get(entry_id)
        if letter is None:
            report.missing.append(entry_id)
        else:
            yield letter
