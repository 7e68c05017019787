"""The simulator's own control API (``/sim/...``), for tests and demos: fill queues, read counters, inject
faults, see what was sent, have someone write to an instance. It has no authentication: the simulator listens
on loopback only.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable
from typing import Any, get_args

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from greenq.simulator.faults import FaultKind, FaultRule
from greenq.simulator.send_checks import CHAT_SUFFIXES
from greenq.simulator.sent_notifications import incoming_text
from greenq.simulator.state import SimInstance

InstanceEndpoint = Callable[[SimInstance, Request], Awaitable[Response]]


def _for_instance(endpoint: InstanceEndpoint) -> Callable[[Request], Awaitable[Response]]:
    """``endpoint`` called with the instance the path names; 404 when there is no such instance."""

    @functools.wraps(endpoint)
    async def with_instance(request: Request) -> Response:
        instances: dict[int, SimInstance] = request.app.state.instances
        instance = instances.get(request.path_params["id_instance"])
        if instance is None:
            return JSONResponse({"error": "no such instance"}, status_code=404)
        return await endpoint(instance, request)

    return with_instance


async def list_instances(request: Request) -> Response:
    instances: dict[int, SimInstance] = request.app.state.instances
    return JSONResponse([instance.snapshot() for instance in instances.values()])


@_for_instance
async def add_notifications(instance: SimInstance, request: Request) -> Response:
    """Body: one notification object (kept byte for byte) or a JSON array of them (re-encoded)."""
    raw = (await request.body()).strip()
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return JSONResponse({"error": "body must be JSON"}, status_code=400)
    if isinstance(parsed, dict):
        bodies = [raw]
    elif isinstance(parsed, list) and all(isinstance(item, dict) for item in parsed):
        bodies = [orjson.dumps(item) for item in parsed]
    else:
        return JSONResponse({"error": "body must be an object or an array of objects"}, status_code=400)
    receipts = await instance.add(bodies)
    return JSONResponse({"receiptIds": receipts, **instance.snapshot()})


@_for_instance
async def stats(instance: SimInstance, request: Request) -> Response:
    return JSONResponse(instance.snapshot())


@_for_instance
async def faults(instance: SimInstance, request: Request) -> Response:
    """POST ``{"kind": "fail"|"delay"|"drop"|"lose_reply"|"lose", "count": N, "status": 500, "seconds": 1.0,
    "methods": [...], "every": K}`` adds a fault for the next N calls (``drop``: closed unanswered before the
    call is processed, ``lose_reply``: after it; ``lose``: N notifications, one in K); DELETE clears them.
    """
    if request.method == "DELETE":
        instance.faults.clear()
        return JSONResponse(instance.snapshot())
    try:
        rule = _rule(orjson.loads(await request.body()))
    except (orjson.JSONDecodeError, ValueError, TypeError) as error:
        return JSONResponse({"error": f"bad fault: {error}"}, status_code=400)
    instance.faults.add(rule)
    return JSONResponse(instance.snapshot())


@_for_instance
async def journal(instance: SimInstance, request: Request) -> Response:
    """POST ``{"lag": seconds}`` changes how long messages take to show in the journal (0 = at once)."""
    try:
        spec = orjson.loads(await request.body())
        instance.journal.lag = float(spec["lag"])
    except (orjson.JSONDecodeError, KeyError, ValueError, TypeError) as error:
        return JSONResponse({"error": f"bad journal settings: {error}"}, status_code=400)
    return JSONResponse(instance.snapshot())


@_for_instance
async def sent(instance: SimInstance, request: Request) -> Response:
    """Everything the send loop sent, in order: idMessage, type (the method), body, sentAt, status."""
    return JSONResponse(instance.outgoing.sent_log)


#: Who writes in a group when the injecting call does not say.
DEFAULT_GROUP_SENDER = "79990000001@c.us"


@_for_instance
async def incoming(instance: SimInstance, request: Request) -> Response:
    """POST ``{"chatId", "text", "senderName"?, "sender"?}``: queues an incomingMessageReceived text message
    (``sender`` is the author in a group chat; in a personal chat it is the chat). Answers its idMessage."""
    try:
        spec = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        spec = None
    problem = _incoming_problem(spec)
    if problem is not None:
        return JSONResponse({"error": problem}, status_code=400)
    chat_id = spec["chatId"]
    sender = spec.get("sender", DEFAULT_GROUP_SENDER) if chat_id.endswith("@g.us") else chat_id
    id_message = instance.outgoing.new_id()
    people = (sender, spec.get("senderName", ""))
    ids = (instance.id_instance, str(instance.settings["wid"]))
    notification = incoming_text(
        ids, id_message, chat_id, spec["text"], people=people, timestamp=int(time.time())
    )
    receipts = await instance.add([orjson.dumps(notification)])
    return JSONResponse({"idMessage": id_message, "receiptIds": receipts})


def _incoming_problem(spec: Any) -> str | None:
    if not isinstance(spec, dict):
        return "body must be a JSON object"
    chat_id = spec.get("chatId")
    if not isinstance(chat_id, str) or not chat_id.endswith(CHAT_SUFFIXES):
        return "chatId must be a string ending in @c.us or @g.us"
    if not isinstance(spec.get("text"), str):
        return "text must be a string"
    if not all(isinstance(spec.get(name, ""), str) for name in ("senderName", "sender")):
        return "senderName and sender must be strings"
    return None


def _rule(spec: Any) -> FaultRule:
    if not isinstance(spec, dict) or spec.get("kind") not in get_args(FaultKind):
        raise ValueError("kind must be fail, delay, drop, lose_reply or lose")
    methods = spec.get("methods")
    return FaultRule(
        kind=spec["kind"],
        remaining=int(spec.get("count", 1)),
        status=int(spec.get("status", 500)),
        seconds=float(spec.get("seconds", 0.0)),
        methods=None if methods is None else frozenset(str(method) for method in methods),
        every=int(spec.get("every", 1)),
    )
