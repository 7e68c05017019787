"""``ctx.send``: a handler's messages, queued into its write buffer as outbox entries (greenq.core.outbox).

Each message becomes an XADD to the outbox stream of the handled notification's partition plus the SET NX
of its ``queued`` reply record, both on the handler's buffer (``ctx.writes``): they are committed in the
batch's MULTI/EXEC only if the handler returns, and a re-run of a committed unit never runs its handlers
again (its claim says so), so each entry is recorded exactly once. Entry ids come from the unit of work,
the handler and how many messages the handler asked for before (:func:`~greenq.core.outbox.outbox_id`), so
a re-decided batch asks for the same ids.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from redis.client import Pipeline

from greenq.core import keys
from greenq.core.outbox import OutboxEntry, ReplyRecord, check_entry, outbox_id
from greenq.workers import send_bodies
from greenq.workers.send_bodies import Body


class NoChatToSend(ValueError):
    """The handled notification names no chat or no instance to send from (pass ``chat=``, or the
    notification cannot be answered at all: e.g. a state change has no chat)."""


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a handler call's messages come from: its unit of work, the handler and the notification."""

    unit: str
    handler: str
    partition: int  #: the notification's partition: its outbox stream
    instance: str | None  #: the notification's idInstance: the only instance a handler sends from
    chat: str | None  #: the notification's chat (``chat=None``)
    id_message: str | None  #: the notification's idMessage (``reply_to``; ``quote=True``)


class Outbox:
    """One handler call's outbox writer; counts its messages to number their ids."""

    def __init__(self, writes: Pipeline | None, origin: Origin | None, reply_ttl_seconds: int) -> None:
        self._writes = writes
        self._origin = origin
        self._ttl = reply_ttl_seconds
        self._ordinal = 0

    @property
    def origin(self) -> Origin:
        if self._origin is None:
            raise NoChatToSend("this context belongs to no notification: there is nothing to send from")
        return self._origin

    def queue(self, body: Body, chat: str | None) -> str:
        """Queue one message on the handler's buffer; its outbox entry id."""
        origin = self.origin
        target = origin.chat if chat is None else chat
        if target is None or origin.instance is None or self._writes is None:
            raise NoChatToSend(
                f"notification has no {'instance' if target else 'chat'} to send to or from; pass chat="
            )
        method, fields = body
        entry = OutboxEntry(
            id=outbox_id(origin.unit, origin.handler, self._ordinal),
            instance=origin.instance,
            method=method,
            body={"chatId": target, **fields},
            created=time.time(),
            handler=origin.handler,
            reply_to=origin.id_message,
        )
        problem = check_entry(entry)
        if problem is not None:
            raise ValueError(problem)
        self._writes.xadd(keys.outbox_stream_key(origin.partition), entry.encode())  # type: ignore[arg-type]
        record = ReplyRecord(updated=entry.created, history=("queued",))
        self._writes.set(keys.reply_key(entry.id), record.encode(), nx=True, ex=self._ttl)
        self._ordinal += 1
        return entry.id


class Sends:
    """``ctx.send``: one method per kind of message, each returning the outbox entry id.

    ``chat=None`` sends to the handled notification's chat; the sending instance is always the
    notification's. A bad argument raises ValueError here, in the handler, which then fails and is retried
    like any handler that raises (fix the handler; its other writes are dropped with it).
    """

    def __init__(self, outbox: Outbox) -> None:
        self._outbox = outbox

    def text(self, text: str, *, chat: str | None = None, quote_id: str | None = None) -> str:
        """sendMessage; ``quote_id``: the idMessage it quotes."""
        return self._outbox.queue(send_bodies.text_body(text, quote_id), chat)

    def file_by_url(
        self, url: str, file_name: str, *, caption: str | None = None, chat: str | None = None
    ) -> str:
        """sendFileByUrl: GREEN API downloads ``url`` and sends it as ``file_name`` (with its extension)."""
        return self._outbox.queue(send_bodies.file_by_url_body(url, file_name, caption), chat)

    def location(
        self,
        latitude: float,
        longitude: float,
        *,
        name: str | None = None,
        address: str | None = None,
        chat: str | None = None,
    ) -> str:
        """sendLocation."""
        return self._outbox.queue(send_bodies.location_body(latitude, longitude, name, address), chat)

    def contact(
        self,
        phone: int,
        *,
        first_name: str | None = None,
        last_name: str | None = None,
        company: str | None = None,
        chat: str | None = None,
    ) -> str:
        """sendContact: ``phone`` with its country code, digits only (e.g. 79001234567)."""
        body = send_bodies.contact_body(phone, first_name, last_name, company)
        return self._outbox.queue(body, chat)

    def poll(
        self,
        question: str,
        options: Sequence[str],
        *,
        multiple_answers: bool = False,
        chat: str | None = None,
    ) -> str:
        """sendPoll: 2 to 12 distinct options."""
        return self._outbox.queue(send_bodies.poll_body(question, options, multiple_answers), chat)

    def buttons(
        self,
        body: str,
        buttons: Sequence[tuple[str, str]],
        *,
        header: str | None = None,
        footer: str | None = None,
        chat: str | None = None,
    ) -> str:
        """sendInteractiveButtonsReply: 1 to 3 ``(buttonId, buttonText)`` buttons that answer with text."""
        return self._outbox.queue(send_bodies.buttons_body(body, buttons, header, footer), chat)

    def reply(self, text: str, *, quote: bool = False) -> str:
        """What ``ctx.reply`` does: a text to the notification's own chat, quoting it if ``quote``."""
        origin = self._outbox.origin
        if origin.chat is None or origin.instance is None:
            raise NoChatToSend(
                "ctx.reply needs a notification with a chat and an instance (this one has none); "
                "use ctx.send with chat="
            )
        if quote and origin.id_message is None:
            raise NoChatToSend("ctx.reply(quote=True) needs a notification with an idMessage to quote")
        return self.text(text, quote_id=origin.id_message if quote else None)


def detached() -> Sends:
    """A ``ctx.send`` outside any notification (a context built by hand): every call raises."""
    return Sends(Outbox(None, None, 0))
