"""Reading the raw webhook body, independent of Content-Type, up to the hard cap.

The ingress does not judge the body: whatever an authenticated sender posts is stored exactly as received
and answered 200, because any other answer makes GREEN API stop the whole instance and resend for up to
24 h. The worker dead-letters what it cannot read (``invalid``) or will not parse (``too_large``). Only a
body over the hard cap is refused (413): the one case in which greenq stalls an instance, counted and
alerted (see the README's "What greenq answers GREEN API").
"""

from __future__ import annotations

from starlette.types import Receive

from greenq.ingress.errors import BadRequest, OverCap


def check_declared_length(content_length: str | None, cap: int) -> None:
    """Refuse early, before reading, when the declared length is over the hard cap."""
    if content_length is None:
        return
    try:
        declared = int(content_length)
    except ValueError:
        raise BadRequest("Content-Length is not a number") from None
    if declared > cap:
        raise OverCap(f"body of {declared} bytes is over the {cap}-byte hard cap")


async def read_limited(receive: Receive, cap: int) -> bytes:
    """The whole body, stopping as soon as it passes ``cap`` (a lying Content-Length cannot bypass it).

    Read straight from the ASGI messages: Starlette's ``request.stream()`` is an async generator per request,
    whose set-up alone cost about as much as the rest of this function."""
    buffer = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise BadRequest("client disconnected before the body was complete")
        if message["type"] != "http.request":
            continue
        buffer += message.get("body", b"")
        if len(buffer) > cap:
            raise OverCap(f"body is over the {cap}-byte hard cap")
        if not message.get("more_body", False):
            return bytes(buffer)
