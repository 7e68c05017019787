"""Handlers that make the pipeline useful with no code of your own.

- ``stream_sink``: publishes every validated notification to a capped Redis Stream per typeWebhook
  (``greenq:events:<typeWebhook>``), for downstream consumers (``XREAD``/consumer groups).
- ``journal_sink``: writes every validated notification as a JSON line to the ``greenq.journal`` logger,
  so it can be shipped to a file or log store separately from operational logs.

Routers to point ``GREENQ_ROUTER`` at: ``default_router`` (stream sink), ``journal_router``,
``all_sinks_router`` (both). Include them in your own router with ``router.include(...)``.
"""

from __future__ import annotations

import logging
from typing import Final

from greenq.core import keys
from greenq.core.logs import fields
from greenq.core.notification import Notification
from greenq.workers.context import HandlerContext
from greenq.workers.router import Handler, Router

journal = logging.getLogger("greenq.journal")

#: What a stream entry costs beyond its body (ids, the other fields, listpack headers), per
#: ``python -m bench.memory``: ~200 B measured, rounded up.
ENTRY_OVERHEAD_BYTES: Final = 256


def stream_cap(body_bytes: int, max_entries: int, max_bytes: int) -> int:
    """MAXLEN for an entry of ``body_bytes``: as many such entries as fit ``max_bytes``, at most
    ``max_entries``. Trimming is approximate (whole listpack nodes) and sizes vary between entries, so a
    stream holds about ``max_bytes``, never more than about twice that."""
    return max(1, min(max_entries, max_bytes // (body_bytes + ENTRY_OVERHEAD_BYTES)))


def stream_sink(notification: Notification, ctx: HandlerContext) -> None:
    """Append the notification (its original body text) to its typeWebhook's stream, capped by a count
    and a byte budget (``GREENQ_STREAM_MAXLEN``, ``GREENQ_STREAM_MAX_BYTES``)."""
    envelope = notification.envelope
    settings = ctx.settings
    ctx.writes.xadd(
        keys.event_stream(notification.type_webhook),
        {
            "body": envelope.body,
            "type_message": notification.type_message or "",
            "id_instance": str(notification.id_instance or ""),
            "id_message": notification.id_message or "",
            "received_at": repr(envelope.received_at),
            "request_id": envelope.request_id,
            "source": envelope.source,
        },
        maxlen=stream_cap(len(envelope.body.encode()), settings.stream_maxlen, settings.stream_max_bytes),
        approximate=True,
    )


def journal_sink(notification: Notification, ctx: HandlerContext) -> None:
    """One INFO line per notification with its full data."""
    journal.info(
        "notification",
        extra=fields(
            typeWebhook=notification.type_webhook,
            typeMessage=notification.type_message,
            idInstance=notification.id_instance,
            idMessage=notification.id_message,
            notification=notification.data,
        ),
    )


def _router_with(*sinks: tuple[str, Handler]) -> Router:
    router = Router(chat_state=False)  # sinks keep no per-chat state
    for name, handler in sinks:
        router.add(handler, name=name)
    return router


default_router = _router_with(("greenq.stream_sink", stream_sink))
journal_router = _router_with(("greenq.journal_sink", journal_sink))
all_sinks_router = _router_with(("greenq.stream_sink", stream_sink), ("greenq.journal_sink", journal_sink))
