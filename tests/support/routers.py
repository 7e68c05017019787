"""Routers tests name in ``GREENQ_ROUTER`` (``tests.support.routers:<name>``), in-process or in real
worker processes."""

from __future__ import annotations

import time

from greenq.core.notification import Notification
from greenq.workers.context import HandlerContext
from greenq.workers.router import Router

#: While this Redis key exists, the blocking handler holds its batch open (so a test can kill the worker
#: mid-job); the loop is bounded so a forgotten key cannot hang a test run.
BLOCK_KEY = "test:block"
SEEN_STREAM = "test:seen"

blocking_router = Router()


@blocking_router.on(name="record-after-unblocked")
def record_after_unblocked(notification: Notification, ctx: HandlerContext) -> None:
    deadline = time.monotonic() + 60
    while ctx.redis.exists(BLOCK_KEY) and time.monotonic() < deadline:
        time.sleep(0.02)
    ctx.writes.xadd(SEEN_STREAM, {"id": notification.id_message or ""})


#: No handler at all: every notification ends ``unhandled``.
empty_router = Router()

#: Handler calls of ``flaky_router`` in this process ("ok:<idMessage>", "broken:<idMessage>").
calls: list[str] = []
#: One handler that always succeeds, one (text messages only) that always raises.
flaky_router = Router()


@flaky_router.on(name="always-ok")
def always_ok(notification: Notification, ctx: HandlerContext) -> None:
    calls.append(f"ok:{notification.id_message}")


@flaky_router.on("incomingMessageReceived", type_message="textMessage", name="always-broken")
def always_broken(notification: Notification, ctx: HandlerContext) -> None:
    calls.append(f"broken:{notification.id_message}")
    raise RuntimeError("downstream is down")
