"""The built-in route every worker runs after its own router's: outgoingMessageStatus -> the status hash.

GREEN API reports each outgoing message's progress (sent, delivered, read, or failed/noAccount) with
``outgoingMessageStatus`` notifications, keyed by the message's idMessage. This route keeps them in the
worker-owned status hash (``keys.reply_id_key``, greenq.core.outbox) that ``ctx.reply_status`` reads, with
the reply TTL. Notifications arrive in any order and may repeat, so the change is made inside Redis by a
script that only moves the status forward (``STATUS_RANK``; ``failed``/``noAccount`` are final), queued on
``ctx.writes``: committed with the batch, at most once per notification. A status greenq does not rank is
kept as text. Messages the phone sent (``sendByApi: false``) are not greenq's and are skipped.

The route is appended to the user's router (:func:`with_reply_statuses`), so the user's own routes on
``outgoingMessageStatus`` still run, before it; a status no user route takes is still ``unhandled``.
"""

from __future__ import annotations

import time
from typing import Final

from greenq.core import keys
from greenq.core.notification import Notification, timestamp
from greenq.core.outbox import (
    STATUS_DESCRIPTION_FIELD,
    STATUS_FIELD,
    STATUS_RANK,
    STATUS_RANK_FIELD,
    STATUS_TEXT_FIELD,
    STATUS_UPDATED_FIELD,
)
from greenq.workers.context import HandlerContext
from greenq.workers.router import Route, Router

#: The route's name (a retry re-runs handlers by name).
ROUTE_NAME: Final = "greenq.reply_status"

#: KEYS[1]: the status hash. ARGV: status, rank (0: unranked), description ("" for none), updated, ttl.
_RECORD: Final = f"""
local rank = tonumber(ARGV[2])
if rank == 0 then
  redis.call('HSET', KEYS[1], '{STATUS_TEXT_FIELD}', ARGV[1])
elseif rank > tonumber(redis.call('HGET', KEYS[1], '{STATUS_RANK_FIELD}') or '0') then
  redis.call('HSET', KEYS[1], '{STATUS_FIELD}', ARGV[1], '{STATUS_RANK_FIELD}', rank,
             '{STATUS_UPDATED_FIELD}', ARGV[4])
  if ARGV[3] == '' then
    redis.call('HDEL', KEYS[1], '{STATUS_DESCRIPTION_FIELD}')
  else
    redis.call('HSET', KEYS[1], '{STATUS_DESCRIPTION_FIELD}', ARGV[3])
  end
end
redis.call('EXPIRE', KEYS[1], ARGV[5])
return rank
"""


def record_status(notification: Notification, ctx: HandlerContext) -> None:
    """Move the message's status forward (never back) in its status hash."""
    data = notification.data
    status, id_message = data.get("status"), notification.id_message
    if not isinstance(status, str) or not id_message or data.get("sendByApi") is False:
        return
    description = data.get("description")
    when = timestamp(data)
    ctx.writes.eval(
        _RECORD,
        1,
        keys.reply_id_key(id_message),
        status,
        STATUS_RANK.get(status, 0),
        description if isinstance(description, str) else "",
        when if isinstance(when, int) and not isinstance(when, bool) else int(time.time()),
        ctx.settings.reply_ttl_seconds,
    )


reply_status_router = Router(chat_state=False)
reply_status_router.add(record_status, "outgoingMessageStatus", name=ROUTE_NAME)


def is_bookkeeping(route: Route) -> bool:
    """Whether ``route`` is this built-in one: a notification only it takes stays ``unhandled`` (the
    outcome tells operators their router has no route for it), though its status is recorded."""
    return route.name == ROUTE_NAME and route.handler is record_status


def with_reply_statuses(router: Router) -> Router:
    """``router``'s routes, then the built-in status route (unless ``router`` already includes it)."""
    combined = Router(chat_state=router.chat_state)
    combined.include(router)
    if all(route.name != ROUTE_NAME for route in router.routes):
        combined.include(reply_status_router)
    return combined
