"""GREEN API's HTTP API for the poller: the shared base (:mod:`greenq.core.greenapi.client`: settings,
journals, errors) plus receiving and deleting notifications, setSettings and getChatHistory."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx2

from greenq.core.greenapi.client import GreenApiBase
from greenq.core.greenapi.errors import BadResponse


@dataclass(frozen=True, slots=True)
class Received:
    """One notification from receiveNotification: its receipt and the whole response text, unchanged."""

    receipt_id: int
    raw: str
    received_at: float


class GreenApiClient(GreenApiBase):
    """The poller's calls of one instance; ``request_timeout`` bounds each call (plus receiveTimeout)."""

    async def receive(self, receive_timeout: int) -> Received | None:
        """The head of the instance's queue, or None when nothing arrived within ``receive_timeout``."""
        timeout = httpx2.Timeout(self._timeout, read=receive_timeout + self._timeout)
        response = await self._call(
            "GET", "receiveNotification", params={"receiveTimeout": receive_timeout}, timeout=timeout
        )
        received_at = time.time()
        content = response.content
        if not content.strip() or content.strip() == b"null":
            return None
        data = self._json(content, "receiveNotification")
        receipt_id = data.get("receiptId") if isinstance(data, dict) else None
        if not isinstance(receipt_id, int) or isinstance(receipt_id, bool) or "body" not in data:
            raise BadResponse(f"{self._what('receiveNotification')} answered without receiptId and body")
        # The JSON parsed as UTF-8, so decoding cannot fail; the text keeps every quirk of the payload.
        return Received(receipt_id=receipt_id, raw=content.decode("utf-8"), received_at=received_at)

    async def delete(self, receipt_id: int) -> bool:
        """True when GREEN API removed the notification, False when it knew no such receipt."""
        response = await self._call("DELETE", "deleteNotification", str(receipt_id))
        data = self._json(response.content, "deleteNotification")
        result = data.get("result") if isinstance(data, dict) else None
        if not isinstance(result, bool):
            raise BadResponse(f"{self._what('deleteNotification')} answered without a boolean result")
        return result

    async def set_settings(self, values: dict[str, Any]) -> bool:
        """True when GREEN API answered ``{"saveSettings": true}``."""
        response = await self._call("POST", "setSettings", json=values)
        data = self._json(response.content, "setSettings")
        return isinstance(data, dict) and data.get("saveSettings") is True

    async def chat_history(self, chat_id: str, count: int) -> list[dict[str, Any]]:
        """getChatHistory: the newest ``count`` messages of one chat, both directions."""
        response = await self._call("POST", "getChatHistory", json={"chatId": chat_id, "count": count})
        return self._entries(response.content, "getChatHistory")
