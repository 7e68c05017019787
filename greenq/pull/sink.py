"""Handing a received notification to the workers without blocking the event loop.

The producer queue is synchronous (redis-py); each enqueue runs in a worker thread and returns only after
Redis acknowledged the write, which is what allows the delete that follows. In ordered mode the notification
is appended to its chat's partition, behind everything of that chat accepted before it.
"""

from __future__ import annotations

import asyncio

from greenq.core.contract import Envelope, ProducerQueue
from greenq.pull.api import Received


class NotificationSink:
    """Enqueues pulled notifications as ``source="poll"`` envelopes named after their instance."""

    def __init__(self, queue: ProducerQueue) -> None:
        self._queue = queue

    async def enqueue(self, instance: str, received: Received) -> str:
        """Where it went (the RQ job id, or the partition stream); raises ``redis.RedisError`` when Redis
        did not take it."""
        envelope = Envelope(
            body=received.raw, source="poll", received_at=received.received_at, token_id=instance
        )
        enqueued = await asyncio.to_thread(self._queue.enqueue, [envelope])
        return enqueued.ref
