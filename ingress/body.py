"""Reading and sanity-checking the raw webhook body, independent of Content-Type.

The ingress does no schema work: it only proves the body is one JSON object, so garbage is refused with 400
while every real notification (including ones with quirks such as a duplicated key) passes untouched.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
from starlette.requests import ClientDisconnect

from ingress.errors import BadRequest, PayloadTooLarge


def check_declared_length(content_length: str | None, limit: int) -> None:
    """Refuse early, before reading, when the declared length is over the limit."""
    if content_length is None:
        return
    try:
        declared = int(content_length)
    except ValueError:
        raise BadRequest("Content-Length is not a number") from None
    if declared > limit:
        raise PayloadTooLarge(f"body of {declared} bytes is over the {limit}-byte limit")


async def read_limited(chunks: AsyncIterator[bytes], limit: int) -> bytes:
    """The whole body, stopping as soon as it passes ``limit`` (a lying Content-Length cannot bypass it)."""
    buffer = bytearray()
    try:
        async for chunk in chunks:
            buffer += chunk
            if len(buffer) > limit:
                raise PayloadTooLarge(f"body is over the {limit}-byte limit")
    except ClientDisconnect:
        raise BadRequest("client disconnected before the body was complete") from None
    return bytes(buffer)


def decode_notification_body(raw: bytes) -> str:
    """The body as text after checking it is a single JSON object; raises :class:`BadRequest`."""
    if not raw.strip():
        raise BadRequest("empty body")
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise BadRequest(f"body is not valid JSON: {str(error)[:120]}") from None
    if not isinstance(parsed, dict):
        raise BadRequest(f"body must be a JSON object, got {type(parsed).__name__}")
    # orjson accepted it, so it is valid UTF-8.
    return raw.decode("utf-8")
