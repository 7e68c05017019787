"""One send call per instance every ``delaySendMessagesMilliseconds``, across every sender replica.

GREEN API sends queued messages one per delay anyway; calling faster only grows its queue and invites 429s.
A Lua script on ``keys.send_next_key(instance)`` hands out slots: the first free one (now, or the previous
slot plus the delay) is reserved atomically and the caller sleeps until it, so two replicas never get slots
closer than the delay. Granted slots are logged (``keys.send_slots_key``, newest first, capped). The delay is
read with getSettings, reused for a few minutes, and never taken below GREEN API's minimum of 500 ms.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Final

from redis.asyncio import Redis

from greenq.core import keys
from greenq.core.greenapi.client import GreenApiBase
from greenq.core.greenapi.errors import ApiError
from greenq.core.logs import fields

log = logging.getLogger("greenq.sender")

#: GREEN API's smallest delaySendMessagesMilliseconds.
MIN_DELAY_MS: Final = 500
#: Used while getSettings cannot be read (GREEN API's default delay).
FALLBACK_DELAY_MS: Final = 5000
#: Slots kept in the log of granted slots, per instance.
SLOT_LOG_SIZE: Final = 64

_SLOT: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local delay = tonumber(ARGV[1])
local slot = math.max(now, tonumber(redis.call('GET', KEYS[1]) or '0'))
redis.call('SET', KEYS[1], slot + delay, 'PX', slot + delay - now + 60000)
redis.call('LPUSH', KEYS[2], slot)
redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[2]) - 1)
redis.call('PEXPIRE', KEYS[2], 86400000)
return slot - now
"""


class Pacer:
    """Slots for send calls, per instance."""

    def __init__(self, redis: Redis, settings_cache_seconds: float) -> None:
        self._slot = redis.register_script(_SLOT)
        self._cache_seconds = settings_cache_seconds
        self._delays: dict[str, tuple[int, float]] = {}

    async def wait_for_slot(self, api: GreenApiBase, stopping: asyncio.Event) -> bool:
        """Reserve the instance's next slot and sleep until it; False when a stop came first."""
        instance = api.instance.id_instance
        delay = await self.delay_ms(api)
        wait_ms = int(
            await self._slot(
                keys=[keys.send_next_key(instance), keys.send_slots_key(instance)],
                args=[delay, SLOT_LOG_SIZE],
            )
        )
        if wait_ms <= 0:
            return not stopping.is_set()
        try:
            await asyncio.wait_for(stopping.wait(), wait_ms / 1000)
        except TimeoutError:
            return True
        return False

    async def delay_ms(self, api: GreenApiBase) -> int:
        """The instance's delaySendMessagesMilliseconds (cached; at least :data:`MIN_DELAY_MS`)."""
        instance = api.instance.id_instance
        cached = self._delays.get(instance)
        if cached is not None and time.monotonic() < cached[1]:
            return cached[0]
        delay = await self._read_delay(api, cached[0] if cached else FALLBACK_DELAY_MS)
        self._delays[instance] = (delay, time.monotonic() + self._cache_seconds)
        return delay

    async def _read_delay(self, api: GreenApiBase, fallback: int) -> int:
        try:
            value = (await api.get_settings()).get("delaySendMessagesMilliseconds")
        except ApiError as error:
            log.warning(
                "getSettings failed; pacing with the last known delay",
                extra=fields(instance=api.instance.name, error=str(error), delay_ms=fallback),
            )
            return fallback
        if isinstance(value, bool) or not isinstance(value, int | float):
            return max(MIN_DELAY_MS, fallback)
        return max(MIN_DELAY_MS, int(value))
