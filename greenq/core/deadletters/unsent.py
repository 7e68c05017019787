"""The sender's dead letters (outcome ``unsent``): outbox entries it could not deliver, and their replay.

The letter's envelope holds the outbox stream entry's encoded :class:`~greenq.core.outbox.OutboxEntry`
unchanged (source ``outbox``), ``type_webhook`` the send method and ``partition`` the outbox stream it came
from, so ``greenq dlq list/show`` display it like any dead letter and ``greenq dlq replay`` appends the same
entry to the same outbox stream (behind what that stream holds now), where the sender delivers it again.
"""

from __future__ import annotations

from redis.asyncio.client import Pipeline as AsyncPipeline
from redis.client import Pipeline

from greenq.core import keys
from greenq.core.contract import Enqueued, Envelope
from greenq.core.deadletters.store import DeadLetter
from greenq.core.outbox import ENTRY_FIELD, OutboxEntry
from greenq.core.outcomes import Outcome


def unsent_letter(raw: bytes, partition: int, reason: str, entry: OutboxEntry | None) -> DeadLetter:
    """The dead letter of outbox entry ``raw`` (its encoded form; ``entry`` when it could be decoded)."""
    id_instance = entry.instance if entry is not None else None
    return DeadLetter(
        outcome=Outcome.UNSENT,
        reasons=(reason,),
        envelope=Envelope.of_bytes(
            raw, "outbox", received_at=entry.created if entry else 0.0, request_id=entry.id if entry else ""
        ),
        type_webhook=entry.method if entry is not None else None,
        id_instance=int(id_instance) if id_instance and id_instance.isdigit() else None,
        partition=partition,
    )


def resend_in(pipeline: Pipeline | AsyncPipeline, letter: DeadLetter) -> Enqueued:
    """Queue, on ``pipeline``, the letter's entry back onto its outbox stream."""
    stream = keys.outbox_stream_key(letter.partition or 0)
    pipeline.xadd(stream, {ENTRY_FIELD: letter.envelope.raw_body})
    return Enqueued(ref=stream)
