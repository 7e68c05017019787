"""Delivering one outbox partition while this replica holds its lease.

Reads the stream with its consumer group (``keys.SEND_GROUP``, one consumer ``keys.SEND_CONSUMER``): first
the entries read before and never settled (a takeover, or a restart), then new ones. Each chat (instance +
``chatId``) gets a lane that delivers its entries one at a time in stream order; lanes of different chats
run concurrently, bounded by a semaphore shared by the process. Reading pauses while ``read_ahead`` entries
are unsettled. On ``stop`` no new call starts; calls in flight finish, and what is left stays pending.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from greenq.core import keys
from greenq.core.logs import fields
from greenq.core.outbox import OutboxFormatError
from greenq.sender.delivery import Delivery, read_entry
from greenq.sender.metrics import Backlog

log = logging.getLogger("greenq.sender")

Item = tuple[bytes, dict[bytes, bytes]]
ChatKey = tuple[str, str]


@dataclass(frozen=True)
class Reading:
    """How a partition is read (from :class:`SenderSettings`)."""

    block_ms: int = 1000
    read_ahead: int = 200


class PartitionSender:
    """One partition's reader and chat lanes; :meth:`run` returns once ``stop`` is set and lanes ended."""

    def __init__(
        self,
        partition: int,
        redis: Redis,
        delivery: Delivery,
        shared: tuple[asyncio.Semaphore, Backlog],
        reading: Reading,
    ) -> None:
        self.partition = partition
        self.stop = asyncio.Event()
        self._stream = keys.outbox_stream_key(partition)
        self._redis = redis
        self._delivery = delivery
        self._slots, self._backlog = shared
        self._reading = reading
        self._lanes: dict[ChatKey, deque[Item]] = {}
        self._unsettled = 0
        self._room = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()

    def halt(self) -> None:
        """Start no new call; :meth:`run` returns once the calls in flight have finished."""
        self.stop.set()
        self._room.set()

    async def run(self) -> None:
        try:
            await self._ensure_group()
            await self._read_pending()
            while not self.stop.is_set():
                await self._wait_for_room()
                self._dispatch(await self._read(">", self._reading.block_ms))
        finally:
            self.halt()
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)
            self._backlog.drop_partition(self.partition)  # what is left is pending for the next holder

    async def _ensure_group(self) -> None:
        try:
            await self._redis.xgroup_create(self._stream, keys.SEND_GROUP, id="0", mkstream=True)
        except ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise

    async def _read_pending(self) -> None:
        """Entries read before (by this replica or a dead one) and never settled, oldest first."""
        after = "0"
        while not self.stop.is_set():
            page = await self._read(after, None)
            if not page:
                return
            self._dispatch(page)
            after = page[-1][0].decode()
            await self._wait_for_room()

    async def _read(self, start: str, block_ms: int | None) -> list[Item]:
        count = max(1, self._reading.read_ahead - self._unsettled)
        reply = await self._redis.xreadgroup(
            keys.SEND_GROUP, keys.SEND_CONSUMER, {self._stream: start}, count=count, block=block_ms
        )
        entries = cast(Sequence[Any], reply)[0][1] if reply else []
        return [(entry_id, values or {}) for entry_id, values in entries]

    async def _wait_for_room(self) -> None:
        while self._unsettled >= self._reading.read_ahead and not self.stop.is_set():
            self._room.clear()
            await self._room.wait()

    def _dispatch(self, items: list[Item]) -> None:
        for item in items:
            key, created = _chat_of(item[1])
            self._unsettled += 1
            self._backlog.add(key[0], (self.partition, item[0]), created)
            lane = self._lanes.get(key)
            if lane is not None:
                lane.append(item)
                continue
            self._lanes[key] = deque([item])
            task = asyncio.create_task(self._lane(key), name=f"send lane p{self.partition}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _lane(self, key: ChatKey) -> None:
        """Deliver one chat's entries in order; on any failure the whole partition is let go."""
        lane = self._lanes[key]
        try:
            while lane and not self.stop.is_set():
                stream_id, values = lane[0]
                async with self._slots:
                    if self.stop.is_set():
                        return
                    await self._delivery.deliver(self.partition, stream_id, values, self.stop)
                lane.popleft()
                self._settled(key, stream_id)
        except Exception as error:  # Redis down, lease lost, a bug: pending entries go to the next owner
            log.warning("partition stops", extra=fields(partition=self.partition, error=repr(error)))
            self.halt()
        finally:
            del self._lanes[key]

    def _settled(self, key: ChatKey, stream_id: bytes) -> None:
        self._unsettled -= 1
        self._backlog.remove(key[0], (self.partition, stream_id))
        self._room.set()


def _chat_of(values: dict[bytes, bytes]) -> tuple[ChatKey, float]:
    """The entry's lane (instance, chat) and creation time; unreadable entries share one lane."""
    try:
        entry = read_entry(values)
    except OutboxFormatError:
        return ("", ""), 0.0
    return (entry.instance, entry.chat), entry.created
