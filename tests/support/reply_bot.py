"""Routers whose handlers send (``ctx.reply``/``ctx.send``), for the outbox and sender-state tests.

``replier``: ``answer`` counts its calls in ``CALLS`` (an immediate write, so a re-decided batch shows as
an extra call), bumps the chat's ``n`` and replies ``echo <idMessage>`` quoting the message, plus one
message of each kind named in the body's ``test.kinds``; ``later`` then fails on attempts 1..``test.raise``
and, once it passes, sends ``later <idMessage>``. ``test.gate`` makes ``answer`` wait (bounded) for a second
handler call, so two workers decide at the same time. ``stateInstanceChanged`` (no chat) goes to ``orphan``,
which tries ``ctx.reply``. ``members``: per group member (``ctx.sender_state``) and per group
(``ctx.state``) counters, recorded through ``ctx.writes``. ``tracker``: records every outgoingMessageStatus
it sees (the built-in status route must not hide them). Importing it installs the crash points named in
``GREENQ_TEST_CRASH_AT`` (``tests.support.crash``).
"""

from __future__ import annotations

from typing import Any

from greenq.core.notification import Notification
from greenq.workers.context import HandlerContext
from greenq.workers.router import Router
from tests.support import crash
from tests.support.effects import meet, note, noted, steering

CALLS = "test:reply-calls"
SEEN = "test:reply-seen"
GATE_PREFIX = "test:reply-gate:"

replier = Router()
members = Router()
tracker = Router()
crash.install_from_env()


def _send_kind(ctx: HandlerContext, kind: str) -> str:
    send = ctx.send
    match kind:
        case "file":
            return send.file_by_url("https://files.example/menu.pdf", "menu.pdf", caption="our menu")
        case "location":
            return send.location(55.75, 37.62, name="shop", address="Main st 1")
        case "contact":
            return send.contact(79001234567, first_name="Ann", company="Shop")
        case "poll":
            return send.poll("Which?", ["tea", "coffee"], multiple_answers=True)
        case "buttons":
            return send.buttons("Menu", [("1", "Pizza"), ("2", "Soup")], header="Hi", footer="pick one")
        case "other_chat":
            return send.text("to the boss", chat="70000000001@c.us")
    raise AssertionError(kind)


@replier.message(name="answer")
def answer(notification: Notification, ctx: HandlerContext) -> None:
    ctx.redis.incr(CALLS)
    steered = steering(notification)
    gate = steered.get("gate")
    if isinstance(gate, str):
        meet(ctx, gate, GATE_PREFIX)
    ctx.state.update(n=int(ctx.state.get("n", 0)) + 1)
    ids = [ctx.reply(f"echo {notification.id_message}", quote=True)]
    ids.extend(_send_kind(ctx, kind) for kind in steered.get("kinds", ()))
    note(ctx, SEEN, notification, ",".join(ids))


@replier.message(name="later")
def later(notification: Notification, ctx: HandlerContext) -> None:
    if notification.envelope.attempt <= int(steering(notification).get("raise", 0)):
        ctx.send.text("never sent: the handler fails after asking")
        raise RuntimeError(f"later fails attempt {notification.envelope.attempt}")
    ctx.send.text(f"later {notification.id_message}")


@replier.on("stateInstanceChanged", name="orphan")
def orphan(notification: Notification, ctx: HandlerContext) -> None:
    ctx.reply("nobody to answer")


@members.message(name="member")
def member(notification: Notification, ctx: HandlerContext) -> None:
    mine = int(ctx.sender_state.get("n", 0)) + 1
    total = int(ctx.state.get("n", 0)) + 1
    ctx.sender_state.update(n=mine)
    ctx.state.update(n=total)
    note(ctx, SEEN, notification, f"{notification.sender}:{mine}/{total}")


@tracker.on("outgoingMessageStatus", name="track")
def track(notification: Notification, ctx: HandlerContext) -> None:
    note(ctx, SEEN, notification, notification.data.get("status"))


def seen(redis: Any) -> list[tuple[str, str]]:
    """Every committed ``(idMessage, value)`` record, oldest first."""
    return noted(redis, SEEN)
