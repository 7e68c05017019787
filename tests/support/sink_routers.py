"""Two routers with the same handler name, ``sink``: one broken, one fixed, for dead-letter replay tests.

Use them in a worker with ``GREENQ_ROUTER=tests.support.sink_routers:broken_router`` (every notification
fails and, after its retries, is dead-lettered ``failed``) and then ``...:fixed_router`` (the replay is
handled; :data:`fixed_calls` records each notification's idMessage).
"""

from __future__ import annotations

from greenq.core.notification import Notification
from greenq.workers.context import HandlerContext
from greenq.workers.router import Router

broken_router = Router()
fixed_router = Router()
fixed_calls: list[str] = []


@broken_router.on(name="sink")
def broken_sink(notification: Notification, ctx: HandlerContext) -> None:
    raise RuntimeError("downstream is down")


@fixed_router.on(name="sink")
def fixed_sink(notification: Notification, ctx: HandlerContext) -> None:
    fixed_calls.append(notification.id_message or notification.type_webhook)
