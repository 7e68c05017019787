"""The sender's Redis writes: reply records, and the transactions that settle an outbox entry.

An entry is settled by one MULTI/EXEC: its record (``sent`` with the idMessage, or ``dead``), the idMessage
index (``sent``) or the dead letter (``dead``), and the XACK + XDEL of the stream entry. The ``sending``
record written before a call is fenced by the partition's lease: a replica that lost the lease (it stalled
and another took over) cannot start a call.
"""

from __future__ import annotations

import time
from typing import Final, cast

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from greenq.core import keys
from greenq.core.deadletters.store import add_in_pipeline
from greenq.core.deadletters.unsent import unsent_letter
from greenq.core.outbox import OutboxEntry, ReplyRecord

#: States after which an entry needs nothing more from the sender.
SETTLED_STATES: Final = frozenset({"sent", "delivered", "read", "failed", "noAccount"})

#: Longest error text kept in a record.
ERROR_CHARS: Final = 300

_FENCED_SET: Final = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[3])
return 1
"""


class LeaseLost(Exception):
    """This replica no longer holds the partition's lease: it must stop delivering it."""


class Ledger:
    """Reply records and settling transactions for one sender replica (``owner``: its lease id)."""

    def __init__(self, redis: Redis, owner: str, ttl_seconds: int) -> None:
        self._redis = redis
        self._owner = owner
        self._ttl = ttl_seconds
        self._fenced_set = redis.register_script(_FENCED_SET)

    async def record(self, entry_id: str) -> ReplyRecord:
        """The entry's record (a fresh ``queued`` one when there is none, or it is unreadable)."""
        raw = cast(bytes | None, await self._redis.get(keys.reply_key(entry_id)))
        return ReplyRecord.decode(raw) or ReplyRecord()

    async def attributed_to(self, id_message: str) -> str | None:
        """The outbox entry an idMessage was recorded for, if any."""
        raw = cast(bytes | None, await self._redis.hget(keys.reply_id_key(id_message), "entry"))
        return raw.decode() if raw is not None else None

    async def start_attempt(self, partition: int, entry: OutboxEntry, record: ReplyRecord) -> ReplyRecord:
        """Record ``sending`` (one more attempt, from now) if the lease is ours, else :class:`LeaseLost`."""
        now = time.time()
        sending = record.moved("sending", now, attempts=record.attempts + 1, attempt_started=now)
        lease, reply = keys.outbox_lease_key(partition), keys.reply_key(entry.id)
        args: list[str | bytes | int] = [self._owner, sending.encode(), self._ttl]
        if not await self._fenced_set(keys=[lease, reply], args=args):
            raise LeaseLost(f"partition {partition}")
        return sending

    async def note(self, entry_id: str, record: ReplyRecord) -> None:
        """Overwrite the record (an error noted, or back to ``queued`` after a call that never left)."""
        await self._redis.set(keys.reply_key(entry_id), record.encode(), ex=self._ttl)

    async def settle_sent(
        self, partition: int, stream_id: bytes, entry: OutboxEntry, record: ReplyRecord, id_message: str
    ) -> None:
        sent = record.moved("sent", time.time(), id_message=id_message, error=None)
        index = keys.reply_id_key(id_message)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(keys.reply_key(entry.id), sent.encode(), ex=self._ttl)
            pipe.hset(index, "entry", entry.id)
            pipe.expire(index, self._ttl)
            _acknowledge(pipe, partition, stream_id)
            await pipe.execute()

    async def settle_dead(
        self, partition: int, stream_id: bytes, raw: bytes, entry: OutboxEntry | None, reason: str
    ) -> None:
        """Dead-letter the entry (``unsent``) and record it ``dead`` (when its id is known)."""
        letter = unsent_letter(raw, partition, reason, entry)
        async with self._redis.pipeline(transaction=True) as pipe:
            add_in_pipeline(pipe, letter)
            if entry is not None:
                record = await self.record(entry.id)
                dead = record.moved("dead", time.time(), error=reason[:ERROR_CHARS])
                pipe.set(keys.reply_key(entry.id), dead.encode(), ex=self._ttl)
            _acknowledge(pipe, partition, stream_id)
            await pipe.execute()

    async def forget(self, partition: int, stream_id: bytes) -> None:
        """Acknowledge an entry that needs nothing more (already settled, or deleted meanwhile)."""
        async with self._redis.pipeline(transaction=True) as pipe:
            _acknowledge(pipe, partition, stream_id)
            await pipe.execute()


def _acknowledge(pipe: Pipeline, partition: int, stream_id: bytes) -> None:
    stream = keys.outbox_stream_key(partition)
    pipe.xack(stream, keys.SEND_GROUP, stream_id)
    pipe.xdel(stream, stream_id)
