"""Routers whose handlers keep per-chat state (``ctx.state``), for the per-chat state tests.

``counter``: its ``count`` handler adds 1 to the chat's ``n`` and records ``(idMessage, n)`` through
``ctx.writes``, so the committed sequence of ``n`` per chat shows every state change applied exactly once and
in order. ``fsm``: a small conversation (greet -> menu -> confirm -> cleared), each step a route filtered by
``state=``. Bodies steer the handlers through their top-level ``test`` object: ``{"raise": n}`` raises on
attempts 1..n (after changing the state, so the change must be dropped); ``{"gate": "<name>"}`` waits
(bounded) until two handler calls arrived, so two workers read the same state at the same time.
Importing it installs the crash points named in ``GREENQ_TEST_CRASH_AT`` (``tests.support.crash``).
"""

from __future__ import annotations

from typing import Any

from greenq.core.notification import Notification
from greenq.workers.context import HandlerContext
from greenq.workers.router import Router
from greenq.workers.state import NO_STATE
from tests.support import crash
from tests.support.effects import meet, note, noted, steering

SEEN = "test:state-seen"
GATE_PREFIX = "test:state-gate:"

counter = Router()
fsm = Router()
crash.install_from_env()


@counter.on(name="count")
def count(notification: Notification, ctx: HandlerContext) -> None:
    steered = steering(notification)
    gate = steered.get("gate")
    if isinstance(gate, str):
        meet(ctx, gate, GATE_PREFIX)
    n = int(ctx.state.get("n", 0)) + 1
    ctx.state.update(n=n)
    if notification.envelope.attempt <= int(steered.get("raise", 0)):
        raise RuntimeError(f"count fails attempt {notification.envelope.attempt}")
    note(ctx, SEEN, notification, n)


@fsm.message(state=NO_STATE, name="greet")
def greet(notification: Notification, ctx: HandlerContext) -> None:
    ctx.state.set("menu")
    note(ctx, SEEN, notification, "greet")


@fsm.message(state="menu", name="menu")
def menu(notification: Notification, ctx: HandlerContext) -> None:
    ctx.state.set("confirm", choice=notification.text)
    note(ctx, SEEN, notification, "menu")


@fsm.message(state="confirm", name="confirm")
def confirm(notification: Notification, ctx: HandlerContext) -> None:
    note(ctx, SEEN, notification, f"confirm:{ctx.state.get('choice')}")
    ctx.state.clear()


def seen(redis: Any) -> list[tuple[str, str]]:
    """Every committed ``(idMessage, value)`` record, oldest first."""
    return noted(redis, SEEN)
