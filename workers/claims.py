"""Exactly-once claims: which units of work already committed, decided inside the commit.

A *unit* is one envelope as delivered: its request id, attempt, source and replay origin. Re-running a job
(a worker crash after the commit, RQ failing to record success, a re-sent job) repeats units; a resend by
GREEN API or a second ingress copy is a *new* unit of the same notification.

Each unit's commit writes one claim key in the same MULTI/EXEC as its effects, and the batch WATCHes every
claim key it read, so two workers racing on the same notification cannot both commit: the loser's EXEC
fails and its re-run sees the winner's claim. A first delivery with a content identity claims that
identity (``greenq:dedup:<identity>``, value = the unit), so the dedup marker is the claim; every other unit
(retries, replays, notifications without identity, invalid bodies, duplicates) claims its own unit key.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass

from greenq.core import keys
from greenq.core.contract import Envelope

#: Claims outlive job re-runs by far; when deduplication is off they still need a lifetime.
MIN_CLAIM_SECONDS = 3600


class Claimed(enum.Enum):
    """What the stored claims say about one unit."""

    FREE = "free"  #: nobody committed this notification: process it
    DONE = "done"  #: this very unit already committed (a re-run): skip it, count nothing
    RESEND = "resend"  #: another unit committed the same notification: outcome ``duplicate``


def unit_of(envelope: Envelope) -> str:
    """Digest of the unit of work an envelope stands for."""
    text = "\x1f".join(
        (envelope.request_id, str(envelope.attempt), envelope.source, envelope.replay_of or "")
    )
    return hashlib.blake2b(text.encode(errors="surrogatepass"), digest_size=12).hexdigest()


@dataclass(frozen=True, slots=True)
class Claim:
    """The keys that decide one unit: its own claim key, and the content identity's key if it has one."""

    unit: str
    content_key: str | None

    @property
    def unit_key(self) -> str:
        return keys.claim_key(self.unit)

    @property
    def watched(self) -> tuple[str, ...]:
        return (self.unit_key,) if self.content_key is None else (self.unit_key, self.content_key)

    def state(self, unit_value: bytes | None, content_value: bytes | None) -> Claimed:
        """Decide from the values read (under WATCH) for :attr:`watched`."""
        if unit_value is not None or (content_value is not None and content_value.decode() == self.unit):
            return Claimed.DONE
        return Claimed.RESEND if content_value is not None else Claimed.FREE

    def command(self, state: Claimed, dedup_window: int) -> tuple[str | int, ...]:
        """The SET that records this unit's commit: the content identity for a first commit (it lives for
        the dedup window), else the unit key (at least :data:`MIN_CLAIM_SECONDS`)."""
        if state is Claimed.FREE and self.content_key is not None:
            return ("SET", self.content_key, self.unit, "EX", dedup_window)
        return ("SET", self.unit_key, 1, "EX", max(dedup_window, MIN_CLAIM_SECONDS))


def claim_for(envelope: Envelope, content_identity: str | None, dedup_window: int) -> Claim:
    """The claim of ``envelope``: first deliveries with an identity are deduplicated by content."""
    first = envelope.attempt == 1 and envelope.source != "replay"
    if content_identity is None or not first or dedup_window <= 0:
        return Claim(unit_of(envelope), None)
    return Claim(unit_of(envelope), keys.dedup_key(content_identity))
