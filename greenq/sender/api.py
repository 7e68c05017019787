"""GREEN API's sending side for one instance: the send methods and showMessagesQueue."""

from __future__ import annotations

from typing import Any

from greenq.core.greenapi.client import GreenApiBase
from greenq.core.greenapi.errors import BadResponse


class SendingApi(GreenApiBase):
    """The sender's calls of one instance (getSettings and the journals come from the base)."""

    async def send(self, method: str, body: dict[str, Any]) -> str:
        """Call send method ``method`` with ``body``; the idMessage GREEN API gave the message."""
        response = await self._call("POST", method, json=body)
        data = self._json(response.content, method)
        id_message = data.get("idMessage") if isinstance(data, dict) else None
        if not isinstance(id_message, str) or not id_message:
            raise BadResponse(f"{self._what(method)} answered without an idMessage")
        return id_message

    async def messages_queue(self) -> list[dict[str, Any]]:
        """showMessagesQueue: messages GREEN API accepted and has not sent yet, oldest first."""
        response = await self._call("GET", "showMessagesQueue")
        return self._entries(response.content, "showMessagesQueue")
