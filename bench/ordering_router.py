"""The end-to-end bench's order check: a router whose handler counts notifications seen out of chat order.

Each wrk connection of ``bench/e2e.lua`` is one GREEN API instance with one request in flight, and numbers
its requests: the idMessage is ``BENCH<connection, 5 digits><sequence, 12 digits>``. The idMessage is in
every sample the bench sends and is free text to the schemas, and it stays unique per request, so greenq's
dedup folds only a true resend (which carries the same sequence). A connection's notifications fall into
several chats (the samples' chats of its own instance), each of which sees a rising subsequence.

The check runs where the handler's effects take hold: its one write, a Lua script queued on
``ctx.writes``, executes inside the batch's MULTI/EXEC, so commits of several workers are checked in the
order Redis applied them, and a batch that does not commit checks nothing. A sequence *lower* than the
highest one its chat has committed is a violation; an equal one (a resend) is not. The workers load it with
``GREENQ_ROUTER=bench.ordering_router:router``; the stream sink stays, so the work per notification is the
default router's plus this check.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, cast

from redis import Redis

from greenq.core.notification import Notification
from greenq.core.partitions import chat_key
from greenq.workers.context import HandlerContext
from greenq.workers.handlers.builtin import default_router
from greenq.workers.router import Router

#: Hash: chat key -> the highest sequence committed for that chat.
LAST_SEEN: Final = "bench:order:last"
#: Counters: notifications checked, and those that came after a higher sequence of their chat.
CHECKED: Final = "bench:order:checked"
VIOLATIONS: Final = "bench:order:violations"
ORDER_KEYS: Final = (LAST_SEEN, CHECKED, VIOLATIONS)

#: The idMessage e2e.lua sends; group 1 is the connection's sequence number.
SEQUENCED_ID: Final = re.compile(r"BENCH\d{5}(\d{12})")

#: KEYS: LAST_SEEN, CHECKED, VIOLATIONS; ARGV: chat key, sequence. Returns 1 for a violation.
CHECK_SCRIPT: Final = """
local last = tonumber(redis.call('HGET', KEYS[1], ARGV[1]))
local seq = tonumber(ARGV[2])
redis.call('INCR', KEYS[2])
if last ~= nil and seq < last then
  redis.call('INCR', KEYS[3])
  return 1
end
if last == nil or seq > last then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
end
return 0
"""


def sequence_of(id_message: str | None) -> int | None:
    """The connection's sequence number carried by a bench idMessage; None for any other id."""
    match = SEQUENCED_ID.fullmatch(id_message or "")
    return int(match.group(1)) if match else None


def check_order(notification: Notification, ctx: HandlerContext) -> None:
    """Queue the order check of this notification with the batch's commit (plain EVAL: EVALSHA could
    meet NOSCRIPT inside the transaction)."""
    sequence = sequence_of(notification.id_message)
    if sequence is not None:
        ctx.writes.eval(CHECK_SCRIPT, len(ORDER_KEYS), *ORDER_KEYS, chat_key(notification.data), sequence)


router = Router()
router.add(check_order, name="bench.order_check")
router.include(default_router)
#: ``GREENQ_ROUTER`` for the workers of the bench.
ROUTER_PATH: Final = "bench.ordering_router:router"


@dataclass(frozen=True)
class OrderCounts:
    """What the check counted over a run."""

    checked: int
    violations: int
    chats: int


def order_counts(redis: Redis) -> OrderCounts:
    """The counts the handlers committed (zeros before any)."""
    checked, violations = cast(list[bytes | None], redis.mget(CHECKED, VIOLATIONS))
    return OrderCounts(
        checked=int(checked or 0),
        violations=int(violations or 0),
        chats=int(redis.hlen(LAST_SEEN)),
    )
