"""One simulated instance: a FIFO notification queue kept until deleted, settings, faults and counters.

Everything runs on the simulator's event loop; waiters (long polls, the push task) sleep on one condition
that is notified whenever the queue or the settings change.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Final

import orjson

from greenq.core.protocol import NOTIFICATION_SWITCHES
from greenq.simulator.faults import DELIVERY, Faults
from greenq.simulator.journal import Journal, RateLimit, journal_entry
from greenq.simulator.outgoing import Outgoing

#: Settings switches that take "yes"/"no" (GREEN API SetSettings).
YES_NO_SETTINGS: Final = frozenset(
    {
        *NOTIFICATION_SWITCHES,
        "markIncomingMessagesReaded",
        "markIncomingMessagesReadedOnReply",
        "keepOnlineStatus",
        "enableMessagesHistory",
        "sharedSession",
    }
)
TEXT_SETTINGS: Final = frozenset({"webhookUrl", "webhookUrlToken"})
DELAY_SETTING: Final = "delaySendMessagesMilliseconds"


def default_settings(id_instance: int) -> dict[str, Any]:
    """A new instance's settings: every notification off, HTTP API mode (GREEN API's defaults)."""
    settings: dict[str, Any] = {"wid": f"7{id_instance:010d}@c.us", "countryInstance": "", "typeAccount": ""}
    settings.update(webhookUrl="", webhookUrlToken="", delaySendMessagesMilliseconds=5000)
    settings.update(dict.fromkeys(sorted(YES_NO_SETTINGS), "no"))
    return settings


def check_settings(values: object) -> str | None:
    """Why ``values`` is not a valid setSettings body, or None when it is."""
    if not isinstance(values, dict) or not values:
        return "body must be an object with at least one setting"
    for key, value in values.items():
        if key in YES_NO_SETTINGS and value not in ("yes", "no"):
            return f"{key} must be yes or no"
        if key in TEXT_SETTINGS and not isinstance(value, str):
            return f"{key} must be a string"
        if key == DELAY_SETTING and not (isinstance(value, int) and 500 <= value <= 600_000):
            return f"{key} must be an integer from 500 to 600000"
        if key not in YES_NO_SETTINGS | TEXT_SETTINGS | {DELAY_SETTING}:
            return f"unknown setting {key}"
    return None


@dataclass(frozen=True, slots=True)
class Pending:
    """A queued notification: its receipt and the exact JSON text it was added with."""

    receipt_id: int
    body: bytes


@dataclass
class InstanceStats:
    added: int = 0
    receive_calls: int = 0
    delete_calls: int = 0
    deleted: int = 0
    delivered: int = 0
    delivery_attempts: int = 0
    delivery_failures: int = 0
    lost: int = 0


class SimInstance:
    """A GREEN API instance as the simulator keeps it."""

    def __init__(
        self,
        id_instance: int,
        token: str,
        journal_rate: int = 0,
        journal_lag: float = 0.0,
        send_rate: int = 0,
    ) -> None:
        self.id_instance = id_instance
        self.token = token
        self.settings = default_settings(id_instance)
        self.stats = InstanceStats()
        self.faults = Faults()
        self.journal = Journal(journal_lag)
        #: Per-second limit of the journal methods (GREEN API rate-limits them and answers 429).
        self.journal_limit = RateLimit(journal_rate)
        #: Messages sent through the API: queued until the send loop sends them.
        self.outgoing = Outgoing(send_rate)
        self._queue: deque[Pending] = deque()
        self._next_receipt = 1
        self._changed = asyncio.Condition()

    @property
    def push_mode(self) -> bool:
        """True when a webhookUrl is set: the queue is then delivered by push, not receiveNotification."""
        return bool(self.settings["webhookUrl"])

    async def add(self, bodies: list[bytes], *, journal: bool = True) -> list[int]:
        """Append notifications in order; their receipt ids (a lost one gets one but is never queued).

        Message notifications are journaled unless ``journal`` is False (the send loop journals its own).
        """
        receipts = []
        async with self._changed:
            for body in bodies:
                if journal:
                    self._log(body)
                if self.faults.take(DELIVERY) is not None:
                    self.stats.lost += 1
                else:
                    self._queue.append(Pending(self._next_receipt, body))
                receipts.append(self._next_receipt)
                self._next_receipt += 1
            self.stats.added += len(bodies)
            self._changed.notify_all()
        return receipts

    def _log(self, body: bytes) -> None:
        """Journal a message notification, as GREEN API logs every message it hands over."""
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            return
        entry = journal_entry(data) if isinstance(data, dict) else None
        if entry is not None:
            self.journal.record(entry)

    async def wait_pull_head(self, timeout: float) -> Pending | None:
        """The head for receiveNotification, waiting up to ``timeout``; None if none came (or push mode)."""
        return await self._wait(lambda: bool(self._queue) and not self.push_mode, timeout)

    async def wait_push_head(self) -> Pending:
        """The head for push delivery, waiting as long as it takes."""
        head = await self._wait(lambda: bool(self._queue) and self.push_mode, None)
        assert head is not None  # without a timeout the wait only ends with a head
        return head

    async def remove(self, receipt_id: int) -> bool:
        """Drop the notification with this receipt; False when there is none."""
        async with self._changed:
            for pending in self._queue:
                if pending.receipt_id == receipt_id:
                    self._queue.remove(pending)
                    self._changed.notify_all()
                    return True
        return False

    async def update_settings(self, values: dict[str, Any]) -> None:
        """Apply setSettings at once (GREEN API takes up to 5 minutes; tests need no wait)."""
        async with self._changed:
            self.settings.update(values)
            self._changed.notify_all()

    def snapshot(self) -> dict[str, Any]:
        """Counters for the control API."""
        return {
            "idInstance": self.id_instance,
            "queue_length": len(self._queue),
            "push_mode": self.push_mode,
            "faults_pending": self.faults.pending,
            "faults_injected": self.faults.injected,
            "journal_length": len(self.journal),
            "journal_refused": self.journal_limit.refused,
            **asdict(self.stats),
            **self.outgoing.snapshot(),
        }

    async def _wait(self, ready: Callable[[], bool], timeout: float | None) -> Pending | None:
        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(ready), timeout)
            except TimeoutError:
                return None
            return self._queue[0]
