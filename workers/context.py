"""What a handler gets besides the notification: Redis, the batch's buffered writes, settings, a logger,
its chat's (and sender's) state and the outbox (``ctx.reply``/``ctx.send``)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from redis import Redis
from redis.client import Pipeline

from greenq.core.outbox import ReplyStatus
from greenq.core.settings import WorkerSettings
from greenq.workers.reply_status import read_reply_status
from greenq.workers.sending import Sends, detached
from greenq.workers.state import ChatState


@dataclass(frozen=True)
class HandlerContext:
    """Shared, long-lived resources plus this handler call's write buffer; handlers must not close them.

    ``writes`` is a Redis pipeline: commands queued on it are committed in one MULTI/EXEC with the whole
    batch (its outcomes, dead letters and dedup markers), and only if the handler returns. A handler that
    raises has its queued writes discarded, so its retry cannot apply them twice. Use ``redis`` for reads
    and for anything that must happen immediately.

    ``state`` is the chat's state (a name and data, README: Writing a bot), read before the batch ran
    and committed like ``writes``: only if the handler returns. ``sender_state`` is the same per (chat,
    sender): in a group, each member's own conversation.

    ``send`` (and :meth:`reply`) record messages in the outbox, like ``writes``: only if the handler
    returns, exactly once; the sender delivers them.
    """

    redis: Redis
    writes: Pipeline
    settings: WorkerSettings
    log: logging.Logger
    state: ChatState = field(default_factory=lambda: ChatState(None))
    sender_state: ChatState = field(default_factory=lambda: ChatState(None))
    send: Sends = field(default_factory=detached)

    def reply(self, text: str, *, quote: bool = False) -> str:
        """Send ``text`` to the notification's chat (``quote``: quoting the notification's message); the
        outbox entry id. Raises ValueError (the handler is then retried like any raise) for an empty or
        too long text, and :class:`~greenq.workers.sending.NoChatToSend` for a notification without a
        chat or an instance (a state change, a quota notice): use ``send`` with ``chat=`` there."""
        return self.send.reply(text, quote=quote)

    def reply_status(self, entry_id: str) -> ReplyStatus | None:
        """Where the delivery of entry ``entry_id`` (what ``reply``/``send`` returned) stands, read now;
        None before the batch that asked for it commits, or after ``GREENQ_REPLY_TTL_SECONDS``."""
        return read_reply_status(self.redis, entry_id)
