"""Chat-ordered delivery: which partition a notification belongs to.

A notification's *chat key* is its instance plus its chat (``senderData.chatId``, else a top-level
``chatId``); chat-less types (state changes, quota notices) use the instance alone. The chat key picks one
of ``partitions`` Redis Streams by a stable hash. Every key of a partition is spelled in
:mod:`greenq.core.keys` (``partition_*_key``).
"""

from __future__ import annotations

import zlib
from typing import Any, Final

import orjson

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
