"""Routers the fault tests run in real worker processes (``GREENQ_ROUTER=tests.fault_routers:...``)."""

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
