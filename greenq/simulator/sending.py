"""The send loop of one instance: GREEN API sends its queued messages to WhatsApp one at a time, waiting
delaySendMessagesMilliseconds between them, logs each sent message in the journal, and reports it through the
notifications the instance's settings switch on.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Final

import orjson

from greenq.simulator.journal import journal_entry
from greenq.simulator.outgoing import QueuedSend
from greenq.simulator.sent_notifications import api_message_received, message_status
from greenq.simulator.state import DELAY_SETTING, SimInstance

#: The statuses a message that reaches its chat goes through, in order.
DELIVERY_STATUSES: Final = ("sent", "delivered", "read")
#: What a send to a chat in ``failing_chats`` ends with, by chat kind.
GROUP_FAILURE: Final = ("failed", "SWE004: the number of participants in the group has been exceeded - 300")
PERSONAL_FAILURE: Final = ("noAccount", "the phone number has no WhatsApp account")


class SendLoop:
    """Drains an instance's outgoing queue for the simulator's lifetime."""

    def __init__(
        self, instance: SimInstance, delay_ms: int | None = None, failing_chats: frozenset[str] = frozenset()
    ) -> None:
        self._instance = instance
        self._delay_ms = delay_ms
        self._failing_chats = failing_chats

    async def run(self) -> None:
        while True:
            item = await self._instance.outgoing.take()
            await self.send(item)
            await asyncio.sleep(self._delay_seconds())

    def _delay_seconds(self) -> float:
        """``send_delay_ms`` when configured (fast tests), else the instance's setting."""
        delay = self._delay_ms if self._delay_ms is not None else self._instance.settings[DELAY_SETTING]
        return float(delay) / 1000

    async def send(self, item: QueuedSend) -> None:
        """Send one message: log it, journal it (unless it failed) and queue the notifications switched on."""
        chat_id = item.body["chatId"]
        if chat_id in self._failing_chats:
            await self._fail(item, chat_id)
            return
        instance = self._instance
        timestamp = int(time.time())
        message = api_message_received(self._ids(), item.id_message, item.method, item.body, timestamp)
        entry = journal_entry(message)
        assert entry is not None  # an outgoingAPIMessageReceived always makes an entry
        entry["statusMessage"] = DELIVERY_STATUSES[-1]
        instance.journal.record(entry)
        instance.outgoing.record_sent(item, DELIVERY_STATUSES[0])
        notifications = []
        if self._switched_on("outgoingAPIMessageWebhook"):
            notifications.append(message)
        if self._switched_on("outgoingWebhook"):
            notifications.extend(
                message_status(self._ids(), item.id_message, chat_id, status, timestamp=timestamp)
                for status in DELIVERY_STATUSES
            )
        await self._notify(notifications)

    async def _fail(self, item: QueuedSend, chat_id: str) -> None:
        """A message WhatsApp refused: one final status, nothing in the journal."""
        status, description = GROUP_FAILURE if chat_id.endswith("@g.us") else PERSONAL_FAILURE
        self._instance.outgoing.record_sent(item, status)
        if self._switched_on("outgoingWebhook"):
            timestamp = int(time.time())
            await self._notify(
                [
                    message_status(
                        self._ids(),
                        item.id_message,
                        chat_id,
                        status,
                        timestamp=timestamp,
                        description=description,
                    )
                ]
            )

    async def _notify(self, notifications: list[dict[str, Any]]) -> None:
        """Queue them for delivery; journaled here already, so ``add`` must not journal them again."""
        if notifications:
            await self._instance.add([orjson.dumps(item) for item in notifications], journal=False)

    def _switched_on(self, setting: str) -> bool:
        return bool(self._instance.settings.get(setting) == "yes")

    def _ids(self) -> tuple[int, str]:
        return self._instance.id_instance, str(self._instance.settings["wid"])
