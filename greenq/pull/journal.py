"""Reading an instance's journal within GREEN API's rate limits.

GREEN API limits the journal methods per second and answers 429 past the limit. Calls of one instance are
spaced ``1 / rate`` seconds apart; a 429, 5xx, timeout or broken connection waits (Retry-After or a capped,
jittered backoff, whichever is longer) and tries again, up to ``max_attempts`` tries.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from greenq.core.backoff import Backoff
from greenq.core.greenapi.client import Direction
from greenq.core.greenapi.errors import ApiError, AuthRefused, RateLimited
from greenq.core.logs import fields
from greenq.pull.api import GreenApiClient
from greenq.pull.rebuild import InstanceInfo

log = logging.getLogger("greenq.reconcile")

T = TypeVar("T")


@dataclass(frozen=True)
class JournalPolicy:
    """How fast and how persistently one instance's journal is read."""

    rate_per_second: float
    max_attempts: int
    backoff_base: float
    backoff_cap: float


class JournalReader:
    """One instance's journal calls, throttled and retried."""

    def __init__(self, api: GreenApiClient, policy: JournalPolicy) -> None:
        self._api = api
        self._policy = policy
        self._interval = 1.0 / policy.rate_per_second
        self._next_call = 0.0
        self.rate_limited = 0

    async def instance_info(self) -> InstanceInfo:
        """idInstance, wid and typeInstance for rebuilt notifications (getSettings)."""
        settings = await self._retrying("getSettings", self._api.get_settings)
        wid, kind = settings.get("wid"), settings.get("typeInstance")
        return InstanceInfo(
            id_instance=int(self._api.instance.id_instance),
            wid=wid if isinstance(wid, str) else "",
            type_instance=kind if isinstance(kind, str) and kind else "whatsapp",
        )

    async def messages(self, direction: Direction, minutes: int) -> list[dict[str, Any]]:
        """The journal of one direction for the last ``minutes``."""
        return await self._retrying(direction, lambda: self._api.journal(direction, minutes))

    async def chat_history(self, chat_id: str, count: int) -> list[dict[str, Any]]:
        return await self._retrying("getChatHistory", lambda: self._api.chat_history(chat_id, count))

    async def _retrying(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        backoff = Backoff(self._policy.backoff_base, self._policy.backoff_cap)
        while True:
            await self._throttle()
            try:
                return await call()
            except AuthRefused:
                raise
            except ApiError as error:
                if backoff.failures + 1 >= self._policy.max_attempts:
                    raise
                delay = backoff.next_delay()
                if isinstance(error, RateLimited):
                    self.rate_limited += 1
                    delay = max(delay, error.retry_after or 0.0)
                log.warning(
                    "journal call failed; retrying",
                    extra=fields(
                        instance=self._api.instance.name, call=what, error=str(error), retry_in=delay
                    ),
                )
                self._next_call = max(self._next_call, time.monotonic() + delay)

    async def _throttle(self) -> None:
        """Wait until this instance may call again; then reserve the next slot."""
        now = time.monotonic()
        if self._next_call > now:
            await asyncio.sleep(self._next_call - now)
        self._next_call = max(now, self._next_call) + self._interval
