"""GREEN API's sending methods as the simulator answers them: each valid call queues the message and answers
its idMessage at once (the send loop sends it later); showMessagesQueue and clearMessagesQueue look at and
empty that queue. A send method past ``send_rate`` calls a second answers 429, as GREEN API does.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from greenq.simulator.send_checks import SEND_METHODS, check_send
from greenq.simulator.state import SimInstance

Handler = Callable[[SimInstance, Request, str | None], Awaitable[Response]]


async def send_call(instance: SimInstance, request: Request, argument: str | None) -> Response:
    """One sending method: rate limit, body checks, then the message joins the outgoing queue."""
    method = request.path_params["method"]
    if not instance.outgoing.allow(method):
        return _error(429, "Too Many Requests")
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        return _error(400, "body must be JSON")
    problem = None if argument is None else "unexpected path argument"
    problem = problem or check_send(method, body)
    if problem is not None:
        return _error(400, f"Validation failed: {problem}")
    id_message = await instance.outgoing.enqueue(method, body)
    return JSONResponse({"idMessage": id_message})


async def show_messages_queue(instance: SimInstance, request: Request, argument: str | None) -> Response:
    return JSONResponse(instance.outgoing.listing())


async def clear_messages_queue(instance: SimInstance, request: Request, argument: str | None) -> Response:
    instance.outgoing.clear()
    return JSONResponse({"isCleared": True})


SEND_HANDLERS: dict[tuple[str, str], Handler] = {
    **{("POST", method): send_call for method in sorted(SEND_METHODS)},
    ("GET", "showMessagesQueue"): show_messages_queue,
    ("GET", "clearMessagesQueue"): clear_messages_queue,
}


def _error(status: int, message: str) -> Response:
    return JSONResponse({"error": message}, status_code=status)
