"""Chat-ordered delivery: which partition a notification belongs to, and every key of one partition.

A notification's *chat key* is its instance plus its chat (``senderData.chatId``, else a top-level
``chatId``); chat-less types (state changes, quota notices) use the instance alone. The chat key picks one
of ``partitions`` Redis Streams by a stable hash. Every key of partition ``n`` carries the hash tag
``{pn}``, so all of one partition lives in one cluster slot and no Redis command or transaction ever
touches two partitions (a later step can spread partitions over several Redis nodes).

Per partition: the stream of accepted envelopes (read by one drain at a time, in a consumer group), the
drain's *scheduled* flag (an RQ ``drain_partition`` job is queued or running), the *held* hash (chat key ->
when its parked head may be retried) and one *parked* list per held chat (its failed notification first,
then every later notification of that chat, in order).
"""

from __future__ import annotations

import hashlib
import zlib
from typing import Any, Final

import orjson

from greenq.core.keys import PREFIX

#: Consumer group and (single) consumer name of every partition stream: one drain reads a partition.
GROUP: Final = "greenq-drain"
CONSUMER: Final = "drain"

#: Seconds the scheduled flag outlives a lost drain job (Redis refused the RQ enqueue after the XADD).
SCHEDULED_TTL_SECONDS: Final = 60


def chat_key(data: object) -> str:
    """Instance + chat of a parsed notification ("" parts when absent: unreadable bodies share a key)."""
    if not isinstance(data, dict):
        return ""
    instance = data.get("instanceData")
    id_instance = instance.get("idInstance") if isinstance(instance, dict) else None
    sender = data.get("senderData")
    chat: Any = sender.get("chatId") if isinstance(sender, dict) else None
    if not isinstance(chat, str):
        chat = data.get("chatId")
    chat = chat if isinstance(chat, str) else ""
    return f"{id_instance if isinstance(id_instance, str | int) else ''}\x1f{chat}"


def chat_key_of_body(body: bytes) -> str:
    """The chat key of a raw body; a body that is not JSON gets the empty key (it is dead-lettered)."""
    try:
        return chat_key(orjson.loads(body))
    except orjson.JSONDecodeError:
        return ""


def partition_of(key: str, partitions: int) -> int:
    """Stable partition of a chat key (the same on every process and release)."""
    return zlib.crc32(key.encode(errors="surrogatepass")) % partitions


def _tag(partition: int) -> str:
    return f"{PREFIX}:{{p{partition}}}"


def stream_key(partition: int) -> str:
    return f"{_tag(partition)}:stream"


def scheduled_key(partition: int) -> str:
    return f"{_tag(partition)}:scheduled"


def held_key(partition: int) -> str:
    return f"{_tag(partition)}:held"


def parked_key(partition: int, chat: str) -> str:
    digest = hashlib.blake2b(chat.encode(errors="surrogatepass"), digest_size=10).hexdigest()
    return f"{_tag(partition)}:parked:{digest}"


def lease_key(partition: int) -> str:
    return f"{_tag(partition)}:lease"
