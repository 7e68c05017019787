"""Handing a received notification to the workers' queue without blocking the event loop.

``NotificationQueue`` is synchronous (redis-py); each enqueue runs in a worker thread and returns only after
Redis acknowledged the write, which is what allows the delete that follows.
"""

from __future__ import annotations

import asyncio

from greenq.core.contract import Envelope, NotificationQueue
from greenq.pull.api import Received


class NotificationSink:
    """Enqueues pulled notifications as ``source="poll"`` envelopes named after their instance."""

    def __init__(self, queue: NotificationQueue) -> None:
        self._queue = queue

    async def enqueue(self, instance: str, received: Received) -> str:
        """The RQ job id; raises ``redis.RedisError`` when Redis did not take it."""
        envelope = Envelope(
            body=received.raw, source="poll", received_at=received.received_at, token_id=instance
        )
        return await asyncio.to_thread(self._queue.enqueue, [envelope])
