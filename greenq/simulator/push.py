"""Push delivery as GREEN API documents it: POST the head notification to webhookUrl, one in flight per
instance; a 200 removes it, anything else (another status, a timeout, a refused connection) means a pause
and then the same notification again.
"""

from __future__ import annotations

import asyncio
import logging

import httpx2

from greenq.simulator.state import SimInstance

log = logging.getLogger("greenq.simulator")


class WebhookPusher:
    """The delivery loop of one instance; runs for the simulator's lifetime, idle while not in push mode."""

    def __init__(self, instance: SimInstance, http: httpx2.AsyncClient, timeout: float, pause: float) -> None:
        self._instance = instance
        self._http = http
        self._timeout = timeout
        self._pause = pause

    async def run(self) -> None:
        instance = self._instance
        while True:
            pending = await instance.wait_push_head()
            instance.stats.delivery_attempts += 1
            if await self._post(pending.body):
                if await instance.remove(pending.receipt_id):
                    instance.stats.delivered += 1
                continue
            instance.stats.delivery_failures += 1
            await asyncio.sleep(self._pause)

    async def _post(self, body: bytes) -> bool:
        """True when the webhook answered 200."""
        settings = self._instance.settings
        headers = {"Content-Type": "application/json"}
        if settings["webhookUrlToken"]:
            headers["Authorization"] = settings["webhookUrlToken"]
        try:
            response = await self._http.post(
                settings["webhookUrl"], content=body, headers=headers, timeout=self._timeout
            )
        except httpx2.HTTPError as error:
            log.info("webhook delivery failed: %s", type(error).__name__)
            return False
        if response.status_code != 200:
            log.info("webhook answered %d; resending after a pause", response.status_code)
        return response.status_code == 200
