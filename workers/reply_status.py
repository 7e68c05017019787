"""``ctx.reply_status``: where one outbox entry's delivery stands (greenq.core.outbox: the record + hash)."""

from __future__ import annotations

from redis import Redis

from greenq.core import keys
from greenq.core.outbox import ReplyRecord, ReplyStatus


def read_reply_status(redis: Redis, entry_id: str) -> ReplyStatus | None:
    """The entry's status, or None when greenq has no record of it (never queued, or expired after
    ``GREENQ_REPLY_TTL_SECONDS``). The reported statuses are looked up by the idMessage the sender
    recorded, so they show once the entry is ``sent``."""
    record = ReplyRecord.decode(redis.get(keys.reply_key(entry_id)))  # type: ignore[arg-type]
    if record is None:
        return None
    fields: dict[bytes, bytes] = {}
    if record.id_message:
        fields = redis.hgetall(keys.reply_id_key(record.id_message))  # type: ignore[assignment]
    return ReplyStatus.of(entry_id, record, fields)
