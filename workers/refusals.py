"""After the commit: a notification whose writes EXEC partly refused becomes a ``failed`` dead letter.

The rest of its writes were applied, so a blind retry could apply them twice: a human decides. Its outcome
count moves from what the commit counted to ``failed``.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from redis import Redis
from redis.exceptions import RedisError

from greenq.core import keys
from greenq.core.contract import Envelope
from greenq.core.deadletters.store import DeadLetterStore
from greenq.core.logs import fields
from greenq.core.outcomes import Outcome
from greenq.workers.commit import WriteFailure
from greenq.workers.deciding import letter_for
from greenq.workers.reporting import notification_ids
from greenq.workers.results import Decided, Settled

log = logging.getLogger("greenq.worker")


def record_refused(redis: Redis, failure: WriteFailure) -> Settled:
    """Dead-letter ``failure`` as ``failed`` (naming the handlers whose writes were refused); returns what
    to report for it."""
    settled, decision = failure.settled, failure.settled.decision
    counted = decision.outcome if isinstance(decision, Decided) else None
    handlers = tuple(sorted({owner for owner, _ in failure.errors if owner is not None}))
    reasons = tuple(
        f"Redis refused a write of {owner or 'greenq'} inside the commit: {type(error).__name__}:"
        f" {error}; the item's other writes were applied"
        for owner, error in failure.errors
    )
    envelope = _recorded_envelope(settled)
    if handlers:
        envelope = replace(envelope, pending_handlers=handlers)
    letter = letter_for(settled.read, Outcome.FAILED, reasons, envelope)
    try:
        with redis.pipeline(transaction=True) as pipe:
            if counted is not None:
                pipe.hincrby(keys.OUTCOME_COUNTS, counted.value, -1)
            pipe.hincrby(keys.OUTCOME_COUNTS, Outcome.FAILED.value, 1)
            DeadLetterStore(redis).add_in(pipe, letter)
            pipe.execute()
    except RedisError:
        log.exception(
            "could not dead-letter a partly refused commit",
            extra=fields(**notification_ids(settled.read.data), errors=list(reasons)),
        )
    failed = Decided(outcome=Outcome.FAILED, envelope=envelope, reasons=reasons, writes=decision.writes)
    return Settled(settled.read, failed)


def _recorded_envelope(settled: Settled) -> Envelope:
    """The envelope its decision recorded (a failed one names its failed handlers), else the one read."""
    decision = settled.decision
    return decision.envelope if isinstance(decision, Decided) else settled.read.envelope
