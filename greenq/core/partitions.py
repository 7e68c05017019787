"""Chat-ordered delivery: which partition a notification belongs to.

A notification's *chat key* is its instance plus its chat (``senderData.chatId``, else a top-level
``chatId``); chat-less types (state changes, quota notices) use the instance alone. A pulled notification
(the poller stores GREEN API's ``{receiptId, body}`` answer whole) is keyed by the notification inside, so
it shares its chat's partition with the webhooks of that chat. The chat key picks one
of ``partitions`` Redis Streams by a stable hash. Every key of a partition is spelled in
:mod:`greenq.core.keys` (``partition_*_key``).
"""

from __future__ import annotations

import zlib
from typing import Final

import orjson

from greenq.core.notification import chat_id, id_instance, unwrap

#: Seconds the scheduled flag outlives a lost drain job (Redis refused the RQ enqueue after the XADD).
SCHEDULED_TTL_SECONDS: Final = 60


def chat_key(data: object) -> str:
    """Instance + chat of a parsed notification ("" parts when absent: unreadable bodies share a key)."""
    data = unwrap(data)
    if not isinstance(data, dict):
        return ""
    instance = id_instance(data)
    return f"{instance if isinstance(instance, str | int) else ''}\x1f{chat_id(data) or ''}"


def chat_key_of_body(body: bytes) -> str:
    """The chat key of a raw body; a body that is not JSON gets the empty key (it is dead-lettered)."""
    try:
        return chat_key(orjson.loads(body))
    except orjson.JSONDecodeError:
        return ""


def partition_of(key: str, partitions: int) -> int:
    """Stable partition of a chat key (the same on every process and release)."""
    return zlib.crc32(key.encode(errors="surrogatepass")) % partitions
