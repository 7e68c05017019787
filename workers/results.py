"""The values a notification passes through in a batch, one immutable type per phase and per kind of result.

Reading (``greenq.workers.reading``) turns a wire into a :data:`Read`: :class:`Valid` (to be claimed, routed
and handled) or :class:`Rejected` (unreadable, invalid, unknown type, too large: dead-lettered). Deciding
(``greenq.workers.deciding``, inside the commit) turns a read and its claim state into a :data:`Decision`:
a final outcome (:class:`Decided`), a new attempt (:class:`Retry`), nothing yet (:class:`Deferred`, ordered
mode: behind its chat's retried notification) or nothing at all (:class:`AlreadyCommitted`). Each decision
carries the Redis writes the batch's one MULTI/EXEC commits for it. Reporting reads :class:`Settled` pairs.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Self

from greenq.core.contract import Envelope
from greenq.core.notification import Notification
from greenq.core.outcomes import Outcome
from greenq.workers.claims import Claim
from greenq.workers.validation import Verdict

#: Owner of a queued write: the handler that asked for it, or None for greenq's own bookkeeping.
Owner = str | None


@dataclass(frozen=True, slots=True)
class QueuedWrite:
    """One Redis command for the batch's transaction, remembered with its owner to read EXEC's reply."""

    owner: Owner
    args: tuple[Any, ...]
    options: dict[str, Any]


Writes = tuple[QueuedWrite, ...]


def own_write(*args: Any) -> QueuedWrite:
    """A write of greenq's own bookkeeping (claims, acknowledgements), without options."""
    return QueuedWrite(None, args, {})


# Phase 1: read.


@dataclass(frozen=True, slots=True)
class Valid:
    """A notification its schema accepts: it is claimed, routed and handled."""

    notification: Notification
    claim: Claim
    started: float  #: perf_counter() when its reading began
    origin: str  #: where in its batch it came from (a job's index, an ordered drain's stream entry)
    #: Its chat key (:func:`greenq.core.partitions.chat_key`), computed once: state keys, the ordered drain's
    #: holds and the outbox's partition all use it.
    chat: str
    #: Its chat's state document (``keys.chat_state_key``), read with its claims; None when the router keeps
    #: no chat state.
    state_key: str | None
    #: Its (chat, sender) state document (``keys.sender_state_key``), read likewise; None also when the
    #: notification has no sender.
    sender_state_key: str | None = None

    @property
    def envelope(self) -> Envelope:
        return self.notification.envelope

    @property
    def data(self) -> dict[str, Any]:
        return self.notification.data

    @property
    def type_webhook(self) -> str:
        return self.notification.type_webhook

    @property
    def type_message(self) -> str | None:
        return self.notification.type_message


@dataclass(frozen=True, slots=True)
class Rejected:
    """A notification that cannot be handled: its ``outcome`` (a dead letter) is known from reading alone."""

    envelope: Envelope
    claim: Claim
    started: float
    origin: str
    outcome: Outcome
    reasons: tuple[str, ...]
    #: What could be parsed, for log lines and ids: the body, its top-level scalars, or None.
    data: object = None
    #: None when the body could not be read far enough to be validated.
    verdict: Verdict | None = None

    @property
    def type_webhook(self) -> str | None:
        if self.verdict is not None:
            return self.verdict.type_webhook
        value = self.data.get("typeWebhook") if isinstance(self.data, dict) else None
        return value if isinstance(value, str) else None

    @property
    def type_message(self) -> str | None:
        return self.verdict.type_message if self.verdict is not None else None


Read = Valid | Rejected


# Phase 2: decide (inside the commit, once per commit attempt).


@dataclass(frozen=True, slots=True, kw_only=True)
class _Decision:
    writes: Writes = ()

    def plus(self, writes: Writes) -> Self:
        """The same decision with ``writes`` committed after its own."""
        return replace(self, writes=self.writes + writes)


@dataclass(frozen=True, slots=True, kw_only=True)
class Decided(_Decision):
    """A final outcome. ``envelope`` is the one a dead letter records (a failed one names the handlers a
    replay re-runs)."""

    outcome: Outcome
    envelope: Envelope
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Retry(_Decision):
    """Handlers failed with retries left: ``next_attempt`` runs in ``retry_in`` seconds, re-queued as a job
    (in the writes) or, in ordered mode, parked at the head of its chat."""

    next_attempt: Envelope
    retry_in: float
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Deferred(_Decision):
    """Ordered mode: not decided now, it waits behind an earlier notification of its chat."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AlreadyCommitted(_Decision):
    """An earlier run of the same job committed this unit: nothing to decide, nothing to count."""


Decision = Decided | Retry | Deferred | AlreadyCommitted


# Phase 3: committed.


@dataclass(frozen=True, slots=True)
class Settled:
    """One notification of a committed batch: what was read and what was decided."""

    read: Read
    decision: Decision

    @property
    def label(self) -> str:
        """Its entry in a batch's outcome counts."""
        match self.decision:
            case Decided(outcome=outcome):
                return outcome.value
            case Retry():
                return "retrying"
            case Deferred():
                return "deferred"
            case AlreadyCommitted():
                return "already_committed"
