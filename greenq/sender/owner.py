"""Holding this replica's share of the outbox partitions: acquire, renew, hand back, let go.

Every ``lease_seconds / 3`` the replica heartbeats, renews the leases it holds (a lost one halts its
partition), takes free partitions up to its fair share, halts what exceeds it (another replica joined), and
releases the leases of partitions whose sender has finished. A partition is never restarted in this replica
while its previous sender is still finishing, and its lease stays renewed until then.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable

from redis.asyncio import Redis
from redis.exceptions import RedisError

from greenq.core import keys
from greenq.core.greenapi.process import stopped_within
from greenq.core.logs import fields
from greenq.sender.leases import Leases
from greenq.sender.metrics import Backlog, SenderMetrics
from greenq.sender.partition import PartitionSender

log = logging.getLogger("greenq.sender")


class PartitionOwner:
    def __init__(
        self,
        redis: Redis,
        leases: Leases,
        make_sender: Callable[[int], PartitionSender],
        observed: tuple[SenderMetrics, Backlog],
        partitions: int,
    ) -> None:
        self._redis = redis
        self._leases = leases
        self._make_sender = make_sender
        self._metrics, self._backlog = observed
        self._partitions = partitions
        self._running: dict[int, tuple[PartitionSender, asyncio.Task[None]]] = {}

    async def run(self, stopping: asyncio.Event, tick_seconds: float, stop_timeout: float) -> None:
        """Hold partitions until ``stopping``; then finish calls in flight and release every lease."""
        try:
            while not stopping.is_set():
                try:
                    await self.tick()
                except RedisError as error:
                    log.warning("lease round failed", extra=fields(error=repr(error)))
                await stopped_within(stopping, tick_seconds)
        finally:
            await self.shutdown(stop_timeout)

    async def tick(self) -> None:
        share = await self._leases.fair_share()
        await self._reap()
        for partition, (sender, _) in list(self._running.items()):
            if not await self._leases.renew(partition):
                log.warning("outbox lease lost", extra=fields(partition=partition))
                sender.halt()
        active = [p for p, (sender, _) in self._running.items() if not sender.stop.is_set()]
        for partition in active[share:]:
            self._running[partition][0].halt()  # over our share: hand it back once calls in flight end
        if len(active) < share:
            await self._acquire(share - len(active))
        await self._publish()

    @property
    def held(self) -> list[int]:
        """Partitions being delivered (not halted) now."""
        return sorted(p for p, (sender, _) in self._running.items() if not sender.stop.is_set())

    async def _acquire(self, wanted: int) -> None:
        start = secrets.randbelow(self._partitions)
        for offset in range(self._partitions):
            partition = (start + offset) % self._partitions
            if wanted <= 0:
                return
            if partition not in self._running and await self._leases.acquire(partition):
                sender = self._make_sender(partition)
                task = asyncio.create_task(sender.run(), name=f"outbox partition {partition}")
                self._running[partition] = (sender, task)
                wanted -= 1
                log.info("outbox partition taken", extra=fields(partition=partition))

    async def _reap(self) -> None:
        """Release the leases of partitions whose sender has finished."""
        for partition, (_, task) in list(self._running.items()):
            if not task.done():
                continue
            del self._running[partition]
            if not task.cancelled() and task.exception() is not None:
                log.warning(
                    "outbox partition failed", extra=fields(partition=partition, error=repr(task.exception()))
                )
            await self._leases.release(partition)
            self._metrics.length.remove(str(partition))

    async def _publish(self) -> None:
        self._metrics.partitions.set(len(self.held))
        for partition in self._running:
            length = await self._redis.xlen(keys.outbox_stream_key(partition))
            self._metrics.length.labels(partition=str(partition)).set(length)
        self._backlog.publish(self._metrics)

    async def shutdown(self, timeout: float) -> None:
        for sender, _ in self._running.values():
            sender.halt()
        tasks = [task for _, task in self._running.values()]
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=timeout)
            for task in late:
                task.cancel()
        try:
            for partition in list(self._running):
                await self._leases.release(partition)
            await self._leases.leave()
        except RedisError as error:
            log.warning("leases not released; they expire", extra=fields(error=repr(error)))
        self._running.clear()
