"""One notification on its way through a batch, and the writes it queues for the batch's commit."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from greenq.core.contract import Envelope
from greenq.core.notification import type_webhook
from greenq.core.outcomes import Outcome
from greenq.workers.claims import Claim, Claimed
from greenq.workers.validation import Verdict

#: What happened to one notification: a final outcome, or None when it went back for a retry (or was
#: already committed by an earlier run of the same job: see ``Item.claimed``).
Result = Outcome | None

#: Owner of a queued write: the handler that asked for it, or None for greenq's own bookkeeping.
Owner = str | None


@dataclass
class QueuedWrite:
    """One Redis command for the batch's transaction, remembered with its owner to read EXEC's reply."""

    owner: Owner
    args: tuple[Any, ...]
    options: dict[str, Any]


@dataclass
class Item:
    """Read-phase facts (envelope, parsed data, verdict, claim) plus this commit attempt's decisions."""

    envelope: Envelope
    started: float
    claim: Claim
    data: Any = None
    verdict: Verdict | None = None
    reasons: tuple[str, ...] = ()
    result: Result = None
    retry_in: float | None = None
    claimed: Claimed = Claimed.FREE
    #: Ordered mode: a failed handler's retry is parked at the head of its chat instead of re-queued.
    in_place_retry: bool = False
    retry_envelope: Envelope | None = None
    writes: list[QueuedWrite] = field(default_factory=list)

    @property
    def type_webhook(self) -> str | None:
        if self.verdict is not None:
            return self.verdict.type_webhook
        value = type_webhook(self.data) if isinstance(self.data, dict) else None
        return value if isinstance(value, str) else None

    @property
    def already_committed(self) -> bool:
        """An earlier run of this job committed this unit: nothing to do, nothing to count."""
        return self.claimed is Claimed.DONE

    def fresh(self) -> Item:
        """A copy with the read-phase facts only, for a new commit attempt."""
        copied = copy.copy(self)  # far cheaper than dataclasses.replace, per item and attempt
        copied.writes = []
        copied.retry_envelope = None
        return copied

    def queue(self, owner: Owner, args: tuple[Any, ...], options: dict[str, Any]) -> None:
        self.writes.append(QueuedWrite(owner, args, options))
