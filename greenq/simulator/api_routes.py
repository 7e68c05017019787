"""GREEN API's HTTP API as the simulator answers it: ``/waInstance{id}/{method}/{token}[/{argument}]``.

Errors follow GREEN API's "Common errors" page: unknown idInstance 403, wrong apiTokenInstance 401, unknown
method or wrong HTTP method 404, bad parameters 400, journal and send methods past their per-second limit 429.
Faults injected through the control API come first (``lose_reply`` after the call is processed).
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Awaitable, Callable

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from greenq.simulator.send_routes import SEND_HANDLERS
from greenq.simulator.state import Pending, SimInstance, check_settings

Handler = Callable[[SimInstance, Request, str | None], Awaitable[Response]]

DEFAULT_RECEIVE_TIMEOUT = 5
RECEIVE_TIMEOUT_RANGE = range(5, 61)
#: The journal methods' default window (24 h).
DEFAULT_JOURNAL_MINUTES = 1440


class DroppedResponse(Response):
    """Sends a status line promising a body, then closes the connection: the client never gets an answer.

    An ASGI app cannot close a socket before writing; uvicorn closes it when an app ends a response early.
    """

    def __init__(self) -> None:
        super().__init__()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"64")]})


async def api_call(request: Request) -> Response:
    """One GREEN API call, after faults, instance and token checks."""
    instances: dict[int, SimInstance] = request.app.state.instances
    method = request.path_params["method"]
    instance = instances.get(request.path_params["id_instance"])
    if instance is None:
        return _error(403, "Forbidden")
    fault = instance.faults.take(method)
    if fault is not None:
        if fault.kind == "fail":
            return _error(fault.status, "Injected failure")
        if fault.kind == "drop":
            return DroppedResponse()
        if fault.kind == "lose_reply":
            # Processed, then the answer is lost: the caller cannot tell whether it took effect.
            await _dispatch(instance, request, method)
            return DroppedResponse()
        await asyncio.sleep(fault.seconds)
    return await _dispatch(instance, request, method)


async def _dispatch(instance: SimInstance, request: Request, method: str) -> Response:
    """Token check, method lookup and rate limit, then the method itself."""
    if not hmac.compare_digest(request.path_params["token"].encode(), instance.token.encode()):
        return _error(401, "Unauthorized")
    handler = HANDLERS.get((request.method, method))
    if handler is None:
        return _error(404, "Not Found")
    if method in JOURNAL_METHODS and not instance.journal_limit.allow():
        return _error(429, "Too Many Requests")
    return await handler(instance, request, request.path_params.get("argument"))


async def receive_notification(instance: SimInstance, request: Request, argument: str | None) -> Response:
    instance.stats.receive_calls += 1
    text = request.query_params.get("receiveTimeout", str(DEFAULT_RECEIVE_TIMEOUT))
    if argument is not None or not text.isdigit() or int(text) not in RECEIVE_TIMEOUT_RANGE:
        return _error(400, "bad request data")
    pending = await _unless_disconnected(request, instance.wait_pull_head(int(text)))
    if pending is None:
        return Response(b"null", media_type="application/json")
    # Spliced, not re-encoded, so the body reaches the client exactly as it was added.
    content = b'{"receiptId":%d,"body":%s}' % (pending.receipt_id, pending.body)
    return Response(content, media_type="application/json")


async def delete_notification(instance: SimInstance, request: Request, argument: str | None) -> Response:
    instance.stats.delete_calls += 1
    if argument is None or not argument.isdigit():
        return _error(400, "bad request data")
    removed = await instance.remove(int(argument))
    if removed:
        instance.stats.deleted += 1
    return JSONResponse({"result": removed})


async def get_settings(instance: SimInstance, request: Request, argument: str | None) -> Response:
    return JSONResponse(instance.settings)


async def set_settings(instance: SimInstance, request: Request, argument: str | None) -> Response:
    try:
        values = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        return _error(400, "bad request data")
    problem = check_settings(values)
    if problem is not None:
        return _error(400, f"Validation failed: {problem}")
    await instance.update_settings(values)
    return JSONResponse({"saveSettings": True})


async def last_incoming(instance: SimInstance, request: Request, argument: str | None) -> Response:
    return _journal(instance, request, argument, "incoming")


async def last_outgoing(instance: SimInstance, request: Request, argument: str | None) -> Response:
    return _journal(instance, request, argument, "outgoing")


def _journal(instance: SimInstance, request: Request, argument: str | None, direction: str) -> Response:
    text = request.query_params.get("minutes", str(DEFAULT_JOURNAL_MINUTES))
    if argument is not None or not text.isdigit() or int(text) < 1:
        return _error(400, "bad request data")
    return JSONResponse(instance.journal.last(direction, int(text)))


async def chat_history(instance: SimInstance, request: Request, argument: str | None) -> Response:
    try:
        values = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        return _error(400, "bad request data")
    chat_id = values.get("chatId") if isinstance(values, dict) else None
    count = values.get("count", 100) if isinstance(values, dict) else None
    if argument is not None or not isinstance(chat_id, str) or not isinstance(count, int) or count < 1:
        return _error(400, "bad request data")
    return JSONResponse(instance.journal.history(chat_id, count))


HANDLERS: dict[tuple[str, str], Handler] = {
    ("GET", "receiveNotification"): receive_notification,
    ("DELETE", "deleteNotification"): delete_notification,
    ("GET", "getSettings"): get_settings,
    ("POST", "setSettings"): set_settings,
    ("GET", "lastIncomingMessages"): last_incoming,
    ("GET", "lastOutgoingMessages"): last_outgoing,
    ("POST", "getChatHistory"): chat_history,
    **SEND_HANDLERS,
}

#: The journal methods, rate-limited per second like GREEN API's.
JOURNAL_METHODS = frozenset({"lastIncomingMessages", "lastOutgoingMessages", "getChatHistory"})


async def _unless_disconnected(request: Request, wait: Awaitable[Pending | None]) -> Pending | None:
    """The long poll's result, or None as soon as its client hangs up (a dead poll must not hold the head)."""
    waiting = asyncio.ensure_future(wait)
    hangup = asyncio.ensure_future(_disconnect(request))
    try:
        await asyncio.wait({waiting, hangup}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        hangup.cancel()
        waiting.cancel()
    return waiting.result() if waiting.done() and not waiting.cancelled() else None


async def _disconnect(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass


def _error(status: int, message: str) -> Response:
    return JSONResponse({"error": message}, status_code=status)
