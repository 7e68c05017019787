"""Deduplication of resent notifications.

GREEN API resends a notification when our 200 did not reach it (and pull mode sees one again after a crash
between enqueue and delete), so the same notification can arrive twice. Its identity is derived from the
fields GREEN API keeps stable across resends: instance, type, chat, message id, the status-like field and
the timestamp; a message by instance, direction, chat, idMessage and typeMessage (greenq.message_identity). A
status change (sent -> delivered -> read) changes the identity, so it is not a duplicate.
A marker per identity lives for the dedup window (GREEN API keeps notifications 24 h).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import orjson
from redis import Redis
from redis.client import Pipeline

from greenq import keys
from greenq.message_identity import message_identity

#: Top-level fields that tell two different notifications of the same message apart.
_STATE_FIELDS = ("status", "stateInstance", "statusInstance", "chatState")


def identity(data: dict[str, Any]) -> str:
    """A stable digest of what makes this notification unique (not of its full body)."""
    as_message = message_identity(data)  # a message: without timestamp and typeWebhook (greenq reconcile)
    if as_message is not None:
        return as_message
    instance = data.get("instanceData")
    sender = data.get("senderData")
    message = data.get("messageData")
    parts = [
        instance.get("idInstance") if isinstance(instance, dict) else None,
        data.get("typeWebhook"),
        sender.get("chatId") if isinstance(sender, dict) else data.get("chatId"),
        data.get("idMessage"),
        data.get("timestamp"),
        message.get("typeMessage") if isinstance(message, dict) else None,
        *(data.get(name) for name in _STATE_FIELDS),
    ]
    if data.get("idMessage") is None:
        # No message id (state/device/quota notifications): the whole body is the identity.
        parts.append(data)
    return hashlib.blake2b(orjson.dumps(parts, option=orjson.OPT_SORT_KEYS), digest_size=16).hexdigest()


class Deduplicator:
    """Marks identities as seen for ``window_seconds``; a window of 0 turns deduplication off."""

    def __init__(self, connection: Redis, window_seconds: int) -> None:
        self._redis = connection
        self._window = window_seconds

    @property
    def enabled(self) -> bool:
        return self._window > 0

    def seen(self, identities: Sequence[str]) -> list[bool]:
        """Which identities already have a marker (one round trip for the whole batch)."""
        if not identities or not self.enabled:
            return [False] * len(identities)
        pipe = self._redis.pipeline(transaction=False)
        for digest in identities:
            pipe.exists(keys.dedup_key(digest))
        return [bool(found) for found in pipe.execute()]

    def mark_in(self, pipeline: Pipeline, digest: str) -> None:
        """Queue the marker on the batch's transaction, so it commits with the handlers' writes."""
        if self.enabled:
            pipeline.set(keys.dedup_key(digest), 1, ex=self._window)
