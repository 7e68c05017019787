"""Which sender replica delivers which outbox partition.

Each partition has a lease (``keys.outbox_lease_key``: SET NX PX, holding the replica's id), renewed while
the replica runs and deleted when it stops; a killed replica's leases expire and another takes them over. A
replica heartbeats in ``keys.SENDERS_KEY`` and holds at most its fair share (partitions / live replicas,
rounded up), so replicas split the partitions, and one that holds more than its share hands one back per
round. Renewal and release are compare-and-set scripts: a replica never extends or frees a lease it lost.
"""

from __future__ import annotations

import math
import uuid
from typing import Any, Final, cast

from redis.asyncio import Redis

from greenq.core import keys

_RENEW: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
_RELEASE: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
#: Heartbeat: refresh this replica, forget the dead ones, count the living (server time, one clock).
_HEARTBEAT: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return redis.call('ZCARD', KEYS[1])
"""


class Leases:
    """This replica's view of the partition leases."""

    def __init__(self, redis: Redis, partitions: int, lease_seconds: float) -> None:
        self._redis = redis
        self._partitions = partitions
        self._lease_ms = int(lease_seconds * 1000)
        self.owner = uuid.uuid4().hex
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)
        self._heartbeat = redis.register_script(_HEARTBEAT)

    async def fair_share(self) -> int:
        """Partitions this replica may hold now (heartbeats first, so it counts itself)."""
        live = int(await self._heartbeat(keys=[keys.SENDERS_KEY], args=[self.owner, self._lease_ms]))
        return math.ceil(self._partitions / max(1, live))

    async def acquire(self, partition: int) -> bool:
        key = keys.outbox_lease_key(partition)
        return bool(await self._redis.set(key, self.owner, nx=True, px=self._lease_ms))

    async def renew(self, partition: int) -> bool:
        """False when the lease is no longer this replica's (it expired and another took it)."""
        args: list[Any] = [self.owner, self._lease_ms]
        return bool(await self._renew(keys=[keys.outbox_lease_key(partition)], args=args))

    async def holds(self, partition: int) -> bool:
        value = cast(bytes | None, await self._redis.get(keys.outbox_lease_key(partition)))
        return value is not None and value.decode() == self.owner

    async def release(self, partition: int) -> None:
        await self._release(keys=[keys.outbox_lease_key(partition)], args=[self.owner])

    async def leave(self) -> None:
        """This replica stops: it no longer counts in the fair share."""
        await self._redis.zrem(keys.SENDERS_KEY, self.owner)
