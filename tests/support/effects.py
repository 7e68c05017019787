"""A router whose handlers leave countable effects through ``ctx.writes``, for exactly-once checks.

Use it in a worker with ``GREENQ_ROUTER=tests.support.effects:router``. Importing it also installs the
crash points named in ``GREENQ_TEST_CRASH_AT`` (see :mod:`tests.support.crash`). Bodies steer the
handlers through their top-level ``test`` object:

* ``{"raise": n}``: the ``flaky`` handler raises on attempts 1..n (``n`` >= retries + 1 means ``failed``),
  except in a replay (so a replayed dead letter is handled);
* ``{"wrongtype": true}``: the ``flaky`` handler also writes to a key of the wrong type, so Redis refuses
  that one command inside the batch's EXEC;
* ``{"gate": "<name>"}``: the ``record`` handler waits (bounded) until ``gate`` parties have arrived, so two
  workers can be made to handle the same notification at the same time.

Every successful handler call appends ``{key, handler}`` to :data:`EFFECTS`; ``key`` is the body's
``idMessage``, else its ``test.key``.
"""

from __future__ import annotations

import time
from typing import Any

from greenq.core.notification import Notification
from greenq.workers.context import HandlerContext
from greenq.workers.router import Router
from tests.support import crash

EFFECTS = "test:effects"
WRONG_TYPE_KEY = "test:a-string"
GATE_PREFIX = "test:gate:"
GATE_PARTIES = 2

router = Router()
crash.install_from_env()


def steering(notification: Notification) -> dict[str, Any]:
    """The body's top-level ``test`` object, which steers the test handlers."""
    value = notification.data.get("test")
    return value if isinstance(value, dict) else {}


def note(ctx: HandlerContext, stream: str, notification: Notification, value: object) -> None:
    """Record ``(idMessage, value)`` in ``stream`` through the handler's buffered writes."""
    ctx.writes.xadd(stream, {"key": notification.id_message or "", "seen": str(value)})


def noted(redis: Any, stream: str) -> list[tuple[str, str]]:
    """Every committed :func:`note` of ``stream``, oldest first."""
    return [(values[b"key"].decode(), values[b"seen"].decode()) for _, values in redis.xrange(stream)]


def effect_key(notification: Notification) -> str:
    return notification.id_message or str(steering(notification).get("key", ""))


@router.on(name="record")
def record(notification: Notification, ctx: HandlerContext) -> None:
    gate = steering(notification).get("gate")
    if isinstance(gate, str):
        meet(ctx, gate)
    ctx.writes.xadd(EFFECTS, {"key": effect_key(notification), "handler": "record"})


@router.on(name="flaky")
def flaky(notification: Notification, ctx: HandlerContext) -> None:
    steered = steering(notification)
    envelope = notification.envelope
    if envelope.source != "replay" and envelope.attempt <= int(steered.get("raise", 0)):
        raise RuntimeError(f"flaky handler fails attempt {envelope.attempt}")
    ctx.writes.xadd(EFFECTS, {"key": effect_key(notification), "handler": "flaky"})
    if steered.get("wrongtype"):
        ctx.writes.hincrby(WRONG_TYPE_KEY, "n", 1)


def meet(ctx: HandlerContext, gate: str, prefix: str = GATE_PREFIX) -> None:
    """Wait until GATE_PARTIES handler calls reached the gate (each party counts once; bounded wait)."""
    key = f"{prefix}{gate}"
    arrived = int(ctx.redis.incr(key))
    deadline = time.monotonic() + 10
    while arrived <= GATE_PARTIES and int(ctx.redis.get(key) or 0) < GATE_PARTIES:
        if time.monotonic() > deadline:
            return
        time.sleep(0.005)


def effects(redis: Any) -> list[tuple[str, str]]:
    """Every effect written so far, as (key, handler), oldest first."""
    return [(values[b"key"].decode(), values[b"handler"].decode()) for _, values in redis.xrange(EFFECTS)]
