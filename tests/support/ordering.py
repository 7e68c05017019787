"""Shared by the ordered-mode tests: numbered chat messages, the ingress's writes, what handlers saw, and
what waits in Redis (partition streams, RQ jobs).

Handlers record ``(key, handler)`` effects in the order they ran (``tests.support.effects``); each key is
``<chat>-<seq>``, so the order a chat's handlers saw is read back from Redis and checked per handler.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Sequence
from typing import Any, cast

import orjson
from redis import Redis
from redis.asyncio import Redis as AsyncRedis

from greenq.core import keys, partitions
from greenq.core.contract import ENVELOPE_FIELD, Envelope, notification_queue
from greenq.core.contract.partitioned import append_command, partition_of_envelope
from greenq.ingress.partitioned import PartitionedEnqueuer
from greenq.local.redis_server import LocalRedis
from tests.conftest import load_sample
from tests.support.effects import effects

MESSAGE = load_sample("incomingMessageReceived__textMessage.json")
ORDERED: dict[str, Any] = {
    "router": "tests.support.effects:router",
    "ordering": "partitioned",
    "partitions": 1,  # every chat shares one partition: a held chat must not hold the others
    "max_retries": 2,
}


def message(chat: str, seq: int, id_instance: int | None = None, **steering: Any) -> bytes:
    """Message ``seq`` of ``chat`` (the sample's instance unless ``id_instance``), steered by ``steering``."""
    data = dict(MESSAGE, idMessage=f"{chat}-{seq:03d}", test=steering)
    data["senderData"] = dict(MESSAGE["senderData"], chatId=f"{chat}@c.us")
    if id_instance is not None:
        data["instanceData"] = dict(MESSAGE["instanceData"], idInstance=id_instance)
    return orjson.dumps(data)


def accept(redis_server: LocalRedis, bodies: Sequence[bytes], flush: int = 7, count: int = 1) -> None:
    """Store ``bodies`` as the ingress does in ordered mode, ``flush`` per round trip."""

    async def run() -> None:
        connection = AsyncRedis.from_url(redis_server.url)
        writer = PartitionedEnqueuer(connection, count)
        try:
            for start in range(0, len(bodies), flush):
                chunk = bodies[start : start + flush]
                await writer.enqueue([Envelope.of_bytes(body, "webhook") for body in chunk])
        finally:  # also when a test crashes the writer at a checkpoint
            await connection.aclose()

    asyncio.run(run())


def store_without_drain(redis: Redis, envelopes: Sequence[Envelope], partition_count: int) -> list[int]:
    """Append ``envelopes`` to their partitions as a producer does, but queue no drain job and set no flag:
    what a producer leaves when its drain enqueue fails after the XADDs. Returns the partitions written."""
    written = []
    with redis.pipeline(transaction=False) as pipe:
        for envelope in envelopes:
            partition = partition_of_envelope(envelope, partition_count)
            pipe.pipeline_execute_command(*append_command(partition, envelope))
            written.append(partition)
        pipe.execute()
    return sorted(set(written))


def seen_by_handler(redis: Redis) -> dict[tuple[str, str], list[int]]:
    """(chat, handler) -> the sequence numbers in the order that handler ran them."""
    order: dict[tuple[str, str], list[int]] = defaultdict(list)
    for key, handler in effects(redis):
        chat, seq = key.rsplit("-", 1)
        order[(chat, handler)].append(int(seq))
    return order


def interleaved(
    chats: Sequence[str], per_chat: int, steer: dict[tuple[str, int], dict[str, Any]]
) -> list[bytes]:
    return [message(chat, seq, **steer.get((chat, seq), {})) for seq in range(per_chat) for chat in chats]


def partition_stream(redis: Redis, partition: int) -> list[tuple[bytes, dict[bytes, bytes]]]:
    """The raw entries (id, fields) of one partition stream, oldest first."""
    return cast(list[tuple[bytes, dict[bytes, bytes]]], redis.xrange(keys.partition_stream_key(partition)))


def partition_entries(redis: Redis, partition: int) -> list[Envelope]:
    """The envelopes waiting in one partition stream, oldest first."""
    return [Envelope.decode(values[ENVELOPE_FIELD]) for _, values in partition_stream(redis, partition)]


def queued_functions(redis: Redis) -> list[str]:
    """The function of every job waiting in the RQ queue (batch jobs, drain jobs), in queue order."""
    queue = notification_queue(redis)
    return [str(job.func_name) for job in queue.get_jobs()]


def waiting_envelopes(redis: Redis, partition_count: int = 1) -> list[Envelope]:
    """Every envelope waiting for a worker: in RQ batch jobs, then in each partition stream."""
    jobs = notification_queue(redis).get_jobs()
    batched = [wire for job in jobs if job.func_name == keys.JOB_FUNCTION for wire in job.args[0]]
    streamed = [
        envelope for partition in range(partition_count) for envelope in partition_entries(redis, partition)
    ]
    return [Envelope.from_wire(wire) for wire in batched] + streamed


def chat_key(chat: str) -> str:
    """The partition chat key of ``chat``'s messages."""
    return partitions.chat_key(orjson.loads(message(chat, 0)))


def parked(redis: Redis, chat: str, partition: int = 0) -> list[Envelope]:
    """The envelopes waiting in ``chat``'s parked list, head (the held notification) first."""
    raw = redis.lrange(keys.partition_parked_key(partition, chat_key(chat)), 0, -1)
    return [Envelope.decode(entry) for entry in raw]


def id_of(envelope: Envelope) -> str:
    value = orjson.loads(envelope.raw_body)["idMessage"]
    assert isinstance(value, str)
    return value
