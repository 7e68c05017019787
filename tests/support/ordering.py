"""Ordered-mode test helpers: chat messages steered for ``tests.support.effects``, stored as the ingress
stores them, and the order each chat's handlers saw, read back from Redis.

A message's ``idMessage`` is ``<chat>-<seq>`` (zero-padded), so an effect names its chat and its place.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import orjson
from redis import Redis
from redis.asyncio import Redis as AsyncRedis

from greenq.core import keys, partitions
from greenq.core.contract import Envelope
from greenq.ingress.partitioned import PartitionedEnqueuer
from greenq.local.redis_server import LocalRedis
from tests.conftest import load_sample
from tests.support.effects import effects

MESSAGE = load_sample("incomingMessageReceived__textMessage.json")


def message(chat: str, seq: int, **steering: Any) -> bytes:
    data = dict(MESSAGE, idMessage=f"{chat}-{seq:03d}", test=steering)
    data["senderData"] = dict(MESSAGE["senderData"], chatId=f"{chat}@c.us")
    return orjson.dumps(data)


def chat_key(chat: str) -> str:
    """The partition chat key of ``chat``'s messages."""
    return partitions.chat_key(orjson.loads(message(chat, 0)))


def interleaved(
    chats: Sequence[str], per_chat: int, steer: dict[tuple[str, int], dict[str, Any]]
) -> list[bytes]:
    return [message(chat, seq, **steer.get((chat, seq), {})) for seq in range(per_chat) for chat in chats]


def accept(redis_server: LocalRedis, bodies: Sequence[bytes], flush: int = 7, count: int = 1) -> None:
    """Store ``bodies`` as the ingress does in ordered mode, ``flush`` per round trip."""

    async def run() -> None:
        connection = AsyncRedis.from_url(redis_server.url)
        writer = PartitionedEnqueuer(connection, count)
        for start in range(0, len(bodies), flush):
            chunk = bodies[start : start + flush]
            await writer.enqueue([Envelope.of_bytes(body, "webhook") for body in chunk])
        await connection.aclose()

    asyncio.run(run())


def seen_by_handler(redis: Redis) -> dict[tuple[str, str], list[int]]:
    """(chat, handler) -> the sequence numbers in the order that handler ran them."""
    order: dict[tuple[str, str], list[int]] = defaultdict(list)
    for key, handler in effects(redis):
        chat, seq = key.rsplit("-", 1)
        order[(chat, handler)].append(int(seq))
    return order


def parked(redis: Redis, chat: str, partition: int = 0) -> list[Envelope]:
    """The envelopes waiting in ``chat``'s parked list, head (the held notification) first."""
    raw = redis.lrange(keys.partition_parked_key(partition, chat_key(chat)), 0, -1)
    return [Envelope.decode(entry) for entry in raw]


def id_of(envelope: Envelope) -> str:
    value = orjson.loads(envelope.raw_body)["idMessage"]
    assert isinstance(value, str)
    return value
