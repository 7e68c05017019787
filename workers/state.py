"""Per-chat state for handlers: a small finite-state machine (a state name and its data) per chat (and per
(chat, sender): ``ctx.sender_state``, the same machinery on another key).

Each chat's document lives in Redis (``keys.chat_state_key``) with a TTL. A batch reads the documents of
its chats in the same MGET as its claims, under the same WATCH, and each handler that changes its chat's
state queues one SET (or DEL) into the batch's MULTI/EXEC. So a change is applied exactly once, with the
handler's other writes: a crashed batch applies none, a re-run or retried one finds the committed state,
and a concurrent commit of the same chat by another worker (jobs mode) refuses this batch's EXEC, which is
then decided again from the new state. Within a batch, :class:`ChatStates` passes each notification's
changes on to the next notification of its chat.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any, Final

import orjson

from greenq.core import keys
from greenq.workers.results import QueuedWrite, Writes

#: The state name a chat without state has; ``state=NO_STATE`` routes only such chats.
NO_STATE: Final = ""

#: A chat's stored document: {"name": ..., "data": {...}}; None when it has no state.
Document = dict[str, Any] | None


class ChatStateDisabled(RuntimeError):
    """A handler changed a state its batch does not keep: ``ctx.state`` under a ``Router(chat_state=False)``,
    or ``ctx.sender_state`` of a notification without a sender."""


#: Why a state handle refuses changes, by default.
NOT_KEPT: Final = "this worker's Router(chat_state=False) keeps no per-chat state"


class ChatState:
    """One chat's state as a handler sees and changes it (``ctx.state``).

    Changes are buffered like ``ctx.writes``: committed with the batch only if the handler returns.
    """

    def __init__(self, document: Document, *, enabled: bool = True, refusal: str = NOT_KEPT) -> None:
        name = document.get("name") if document else None
        data = document.get("data") if document else None
        self._name: str = name if isinstance(name, str) else NO_STATE
        self._data: dict[str, Any] = dict(data) if isinstance(data, dict) else {}
        self.changed = False
        self._enabled = enabled
        self._refusal = refusal

    @property
    def name(self) -> str:
        """The current state name (:data:`NO_STATE` when the chat has none)."""
        return self._name

    @property
    def data(self) -> Mapping[str, Any]:
        """The current state's data (read-only; change it with :meth:`update`)."""
        return MappingProxyType(self._data)

    def get(self, key: str, default: Any = None) -> Any:
        return self._data.get(key, default)

    def set(self, name: str, **data: Any) -> None:
        """Move to state ``name`` with exactly ``data`` (the previous data is dropped)."""
        self._change()
        self._name, self._data = name, _copied(data)

    def update(self, **data: Any) -> None:
        """Add or replace data items, staying in the current state."""
        self._change()
        self._data.update(_copied(data))

    def clear(self) -> None:
        """Forget the chat's state and data (its document is deleted)."""
        self._change()
        self._name, self._data = NO_STATE, {}

    def _change(self) -> None:
        if not self._enabled:
            raise ChatStateDisabled(self._refusal)
        self.changed = True

    def document(self) -> Document:
        if self._name == NO_STATE and not self._data:
            return None
        return {"name": self._name, "data": self._data}


def state_reads(chats: Sequence[str]) -> list[str]:
    """The keys a batch WATCHes and reads for its chats' state: each chat's key, then its older key."""
    return [*chats, *(keys.legacy_chat_state_key(key) for key in chats)]


class ChatStates:
    """The state documents of one commit attempt's chats, as the batch has changed them so far."""

    def __init__(self, values: Mapping[str, bytes | None], moving: Mapping[str, str] | None = None) -> None:
        """``moving``: chat key -> the older key its document was read from (deleted by its first change)."""
        self._documents: dict[str, Document] = {key: _decoded(raw) for key, raw in values.items()}
        self._moving = dict(moving or {})
        self._undo: list[tuple[str, Document]] = []

    @classmethod
    def read(cls, chats: Sequence[str], values: Mapping[str, bytes | None]) -> ChatStates:
        """The documents of ``chats`` from the values of :func:`state_reads`. A chat with no document under
        its key falls back to its older, partition-less key (written by jobs-mode workers before state moved
        into the partitions), so switching the ordering mode keeps every chat's state."""
        current: dict[str, bytes | None] = {}
        moving: dict[str, str] = {}
        for key in chats:
            older = keys.legacy_chat_state_key(key)
            current[key] = values.get(key)
            if current[key] is None and values.get(older) is not None:
                current[key], moving[key] = values[older], older
        return cls(current, moving)

    def open(self, key: str | None, refusal: str = NOT_KEPT) -> ChatState:
        """A fresh handle on ``key``'s current document (a handler's changes stay in it until kept); no key:
        the batch keeps no such state, and the handle refuses changes, saying ``refusal``."""
        if key is None:
            return ChatState(None, enabled=False, refusal=refusal)
        return ChatState(self._documents.get(key))

    def name_of(self, key: str | None) -> str:
        """The current state name of ``key`` (what the router's ``state=`` filter matches)."""
        return self.open(key).name

    def keep(self, key: str | None, owner: str, state: ChatState, ttl_seconds: int) -> Writes:
        """A returned handler's change: later notifications of the batch see it; the write commits it."""
        if key is None or not state.changed:
            return ()
        document = state.document()
        self._undo.append((key, self._documents.get(key)))
        self._documents[key] = document
        # A document read from its older key moves with its first change (the DEL is idempotent).
        moved = (QueuedWrite(owner, ("DEL", self._moving[key]), {}),) if key in self._moving else ()
        if document is None:
            return (QueuedWrite(owner, ("DEL", key), {}), *moved)
        return (QueuedWrite(owner, ("SET", key, orjson.dumps(document), "EX", ttl_seconds), {}), *moved)

    def begin(self) -> None:
        """Start one notification's changes (undone by :meth:`rollback` if its decision is dropped)."""
        self._undo.clear()

    def rollback(self) -> None:
        while self._undo:
            key, document = self._undo.pop()
            self._documents[key] = document


def _copied(data: dict[str, Any]) -> dict[str, Any]:
    """A JSON copy of ``data``: a value JSON cannot carry fails in the handler (which is then retried)."""
    copied: dict[str, Any] = orjson.loads(orjson.dumps(data))
    return copied


def _decoded(raw: bytes | None) -> Document:
    if raw is None:
        return None
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None  # not ours (or damaged): the chat starts over rather than failing every batch
    return document if isinstance(document, dict) else None
