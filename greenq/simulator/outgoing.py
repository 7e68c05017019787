"""One instance's sending side as GREEN API keeps it: the outgoing queue (accepted, not yet sent; what
showMessagesQueue lists), message ids, per-method rate limits, and the log of what was sent.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from greenq.simulator.journal import RateLimit


@dataclass(frozen=True, slots=True)
class QueuedSend:
    """An accepted send call: the id it answered, its method and its body as sent."""

    id_message: str
    method: str
    body: dict[str, Any]


class Outgoing:
    """The outgoing queue the send loop drains, in order, one message per delaySendMessagesMilliseconds."""

    def __init__(self, send_rate: int = 0) -> None:
        self._send_rate = send_rate
        self._limits: dict[str, RateLimit] = {}
        self._queue: deque[QueuedSend] = deque()
        self._changed = asyncio.Condition()
        self._issued: set[str] = set()
        #: Everything the loop sent, in order (control API ``/sim/instances/{id}/sent``).
        self.sent_log: list[dict[str, Any]] = []
        self.send_calls = 0
        self.sends_queued = 0

    def allow(self, method: str) -> bool:
        """Count a call of ``method``; False past ``send_rate`` calls of it in a second (GREEN API: 429)."""
        self.send_calls += 1
        limit = self._limits.setdefault(method, RateLimit(self._send_rate))
        return limit.allow()

    async def enqueue(self, method: str, body: dict[str, Any]) -> str:
        """Queue a message for sending; its fresh idMessage."""
        id_message = self.new_id()
        async with self._changed:
            self._queue.append(QueuedSend(id_message, method, body))
            self.sends_queued += 1
            self._changed.notify_all()
        return id_message

    def listing(self) -> list[dict[str, Any]]:
        """showMessagesQueue's answer: the queued messages, oldest first."""
        return [
            {
                "messageID": item.id_message,
                "messagesIDs": [item.id_message],
                "type": item.method,
                "body": item.body,
            }
            for item in self._queue
        ]

    def clear(self) -> None:
        """clearMessagesQueue: queued messages are dropped, never sent."""
        self._queue.clear()

    async def take(self) -> QueuedSend:
        """The queue's head, removed; waits until there is one."""
        async with self._changed:
            await self._changed.wait_for(lambda: bool(self._queue))
            return self._queue.popleft()

    def record_sent(self, item: QueuedSend, status: str) -> None:
        self.sent_log.append(
            {
                "idMessage": item.id_message,
                "type": item.method,
                "body": item.body,
                "sentAt": time.time(),
                "status": status,
            }
        )

    def snapshot(self) -> dict[str, int]:
        """Counters for the control API's stats."""
        return {
            "send_calls": self.send_calls,
            "sends_queued": self.sends_queued,
            "sent": len(self.sent_log),
            "send_rate_refused": sum(limit.refused for limit in self._limits.values()),
            "outgoing_queue_length": len(self._queue),
        }

    def new_id(self) -> str:
        """16 uppercase hex digits (like GREEN API's BAE5... ids), never repeated on this instance."""
        while True:
            candidate = secrets.token_hex(8).upper()
            if candidate not in self._issued:
                self._issued.add(candidate)
                return candidate
