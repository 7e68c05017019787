"""The outbox: messages handlers ask to send, committed with their batch and delivered by the sender.

A handler's ``ctx.reply``/``ctx.send`` becomes an :class:`OutboxEntry`, XADDed to an outbox stream inside
the batch's MULTI/EXEC, so a batch that is retried or re-run never records it twice. The entry goes to the
outbox stream of the partition of the notification being handled (``keys.outbox_stream_key``): in ordered
mode that keeps the transaction inside one partition, and in both modes the replies one chat's handlers ask
for sit in one stream, in commit order, which is the order the sender keeps per chat.

What greenq knows about an entry's delivery is split in two, so that no key has two writers racing on it:

- the *reply record* (``keys.reply_key(entry id)``, a :class:`ReplyRecord`) belongs to the sender. The
  workers create it, ``queued``, with ``SET NX`` in the commit that records the entry (so it exists as soon
  as the entry does); from then on only the sender writes it: ``sending``, ``sent`` (with the ``idMessage``
  GREEN API returned) or ``dead``.
- the *status hash* (``keys.reply_id_key(idMessage)``) belongs to the workers, except for its
  :data:`STATUS_ENTRY` field, which the sender sets to the entry id when GREEN API returns the
  ``idMessage``. The workers' built-in ``outgoingMessageStatus`` route keeps :data:`STATUS_FIELD` at the
  furthest status reported (:data:`STATUS_RANK`: it never moves backwards), with its description and
  time; a status greenq does not know is kept as text in :data:`STATUS_TEXT_FIELD`.

Handlers read both with the entry's id (``ctx.reply_status``, a :class:`ReplyStatus`). Both sides import
the formats from here, and nothing else spells them.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Final, Literal

import orjson

#: GREEN API's sending methods the outbox can carry (each answers ``{"idMessage": ...}``).
SEND_METHODS: Final = frozenset(
    {
        "sendMessage",
        "sendFileByUrl",
        "sendLocation",
        "sendContact",
        "sendPoll",
        "sendInteractiveButtons",
        "sendInteractiveButtonsReply",
    }
)

#: The stream field holding an encoded entry.
ENTRY_FIELD: Final = b"entry"


class OutboxFormatError(ValueError):
    """An outbox stream entry greenq cannot read (damaged, or written by something else)."""


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """One message to send: ``body`` is the API call's JSON body (it names the chat as ``chatId``)."""

    id: str  #: stable: the same handler in the same unit of work asks for the same id (:func:`outbox_id`)
    instance: str  #: idInstance that sends it (the instance of the notification being handled)
    method: str  #: one of :data:`SEND_METHODS`
    body: dict[str, Any]
    created: float  #: time.time() when the handler asked for it
    handler: str  #: the handler that asked for it (for logs and dead letters)
    reply_to: str | None = None  #: idMessage of the notification it answers, if any

    @property
    def chat(self) -> str:
        """The chat it goes to (the sender keeps each chat's entries in order)."""
        chat = self.body.get("chatId")
        return chat if isinstance(chat, str) else ""

    def encode(self) -> dict[bytes, bytes]:
        """The stream entry's fields."""
        return {ENTRY_FIELD: orjson.dumps(asdict(self))}

    @classmethod
    def decode(cls, fields: dict[bytes, bytes]) -> OutboxEntry:
        """An entry from its stream fields; :class:`OutboxFormatError` when it is not one."""
        try:
            data = orjson.loads(fields[ENTRY_FIELD])
            entry = cls(**data)
        except (KeyError, TypeError, orjson.JSONDecodeError) as error:
            raise OutboxFormatError(f"not an outbox entry: {type(error).__name__}") from error
        problem = check_entry(entry)
        if problem is not None:
            raise OutboxFormatError(problem)
        return entry


def outbox_id(unit: str, handler: str, ordinal: int) -> str:
    """The id of the ``ordinal``-th message ``handler`` asked for while handling unit of work ``unit``.

    A re-run of the same unit (a lost EXEC reply, a crashed worker) computes the same ids, so whatever
    records them can tell a re-asked message from a new one."""
    text = f"{unit}\x1f{handler}\x1f{ordinal}"
    return hashlib.blake2b(text.encode(errors="surrogatepass"), digest_size=12).hexdigest()


def check_entry(entry: OutboxEntry) -> str | None:
    """Why ``entry`` cannot be sent as it is, or None (GREEN API checks the rest and answers 400)."""
    if entry.method not in SEND_METHODS:
        return f"unknown send method {entry.method!r}"
    if not entry.chat.endswith(("@c.us", "@g.us")):
        return "chatId must be a chat id ending in @c.us or @g.us"
    if not entry.instance:
        return "the sending instance is unknown"
    return None


# The reply record: one per entry, created by the workers (queued), then written by the sender only.

#: Where an entry's delivery stands. ``queued``: committed, not yet tried. ``sending``: a call is (or was,
#: if the sender died) on its way; a sender that finds an entry here cannot know whether GREEN API took it
#: and checks GREEN API's queue and journal before calling again. ``sent``: GREEN API returned its
#: ``idMessage``. ``dead``: refused (4xx) or given up; its dead letter says why. A record holds only those
#: four; the statuses after ``sent`` are what ``outgoingMessageStatus`` reported, kept in the status hash
#: and shown by :attr:`ReplyStatus.state`.
ReplyState = Literal["queued", "sending", "sent", "delivered", "read", "failed", "noAccount", "dead"]

#: outgoingMessageStatus values greenq ranks (a higher rank replaces a lower one, never the reverse;
#: ``failed`` and ``noAccount`` are final). Any other value is kept as text only.
STATUS_RANK: Final = {"sent": 1, "delivered": 2, "read": 3, "failed": 4, "noAccount": 4}
REPORTED_STATUSES: Final = frozenset(STATUS_RANK)

# The status hash's fields (``keys.reply_id_key``).
STATUS_ENTRY: Final = "entry"  #: the outbox entry id (written by the sender)
STATUS_FIELD: Final = "status"  #: the furthest ranked status reported
STATUS_RANK_FIELD: Final = "rank"  #: its rank (compared inside Redis)
STATUS_DESCRIPTION_FIELD: Final = "description"  #: GREEN API's description of it (failures), if any
STATUS_UPDATED_FIELD: Final = "updated"  #: the reporting notification's timestamp (s) of the last status
STATUS_TEXT_FIELD: Final = "status_text"  #: the last status greenq does not rank, as reported


@dataclass(frozen=True, slots=True)
class ReplyRecord:
    """What greenq knows about one outbox entry's delivery."""

    state: ReplyState = "queued"
    id_message: str | None = None
    attempts: int = 0
    #: time.time() when the latest call started (a ``sending`` entry's call may have reached GREEN API from
    #: then on: the check after an ambiguous failure looks for it from this time).
    attempt_started: float | None = None
    updated: float = 0.0
    error: str | None = None  #: the last failure, clipped; never a URL or token
    #: Not written by greenq today: the reported statuses live in the status hash (module docstring).
    status_text: str | None = None
    history: tuple[str, ...] = field(default=())  #: states passed through, in order

    def moved(self, state: ReplyState, now: float, **changes: Any) -> ReplyRecord:
        """This record in ``state`` (appended to the history), with ``changes`` applied."""
        return replace(self, state=state, updated=now, history=(*self.history, state), **changes)

    def encode(self) -> bytes:
        return orjson.dumps(asdict(self))

    @classmethod
    def decode(cls, raw: bytes | None) -> ReplyRecord | None:
        """The record, or None when there is none (or it is not one: it is then rewritten)."""
        if raw is None:
            return None
        try:
            data = orjson.loads(raw)
            data["history"] = tuple(data.get("history", ()))
            return cls(**data)
        except (TypeError, AttributeError, orjson.JSONDecodeError):
            return None


@dataclass(frozen=True, slots=True)
class ReplyStatus:
    """An entry's delivery as a handler sees it: the sender's record plus the reported statuses."""

    entry_id: str
    record: ReplyRecord
    reported: str | None = None  #: the furthest ranked outgoingMessageStatus (:data:`STATUS_RANK`)
    description: str | None = None
    status_text: str | None = None  #: the last status greenq does not rank, as reported
    reported_at: float | None = None  #: the timestamp of the notification that reported ``reported``

    @property
    def state(self) -> ReplyState:
        """The furthest state known: the reported status once there is one, else the sender's state."""
        if self.reported in REPORTED_STATUSES and self.record.state in ("sending", "sent"):
            return self.reported  # type: ignore[return-value]
        return self.record.state

    @property
    def id_message(self) -> str | None:
        return self.record.id_message

    @classmethod
    def of(cls, entry_id: str, record: ReplyRecord, fields: dict[bytes, bytes]) -> ReplyStatus:
        """From the record and the status hash's fields (empty when there is no hash)."""

        def text(name: str) -> str | None:
            raw = fields.get(name.encode())
            return raw.decode(errors="replace") if raw else None

        updated = text(STATUS_UPDATED_FIELD) or ""
        return cls(
            entry_id,
            record,
            reported=text(STATUS_FIELD),
            description=text(STATUS_DESCRIPTION_FIELD),
            status_text=text(STATUS_TEXT_FIELD),
            reported_at=float(updated) if updated.isdigit() else None,
        )
