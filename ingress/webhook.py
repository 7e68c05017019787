"""The webhook endpoint as a plain ASGI app: the hot path of the ingress.

It skips FastAPI's per-request machinery (dependency resolution, response models), which cost more than
everything greenq itself does per request; the app still documents the route in its OpenAPI schema.
Checks run in order of cost: source address, token, declared length against the hard cap; then the body is
stored as received (group commit). The body's content is never checked here (see ``ingress/body.py``).
"""

from __future__ import annotations

import logging
import os
import time
from typing import Final

import orjson
from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from greenq.core.contract import Envelope
from greenq.core.logs import fields
from greenq.ingress.answers import ACCEPTED, INTERNAL_ERROR
from greenq.ingress.body import check_declared_length, read_limited
from greenq.ingress.client_ip import join_header_lines
from greenq.ingress.components import IngressComponents
from greenq.ingress.errors import IngressRefusal, OverCap

log = logging.getLogger("greenq.ingress")


#: The Content-Length nginx saw, passed along to OVER_CAP_PATH for the log line.
DECLARED_LENGTH_HEADER: Final = b"x-greenq-declared-length"

#: The request headers the webhook reads (ASGI names are lower case), collected in one pass.
READ_HEADERS: Final = frozenset(
    (b"authorization", b"x-forwarded-for", b"x-real-ip", b"content-length", DECLARED_LENGTH_HEADER)
)


class WebhookEndpoint:
    """``POST <webhook_path>``: 200 only once the notification is in Redis.

    With ``over_cap_only`` it serves ``OVER_CAP_PATH``: the same address and token checks, then a counted
    413 (``over_cap``) for a body nginx already refused, so even that stall is visible in the metrics.
    """

    def __init__(self, parts: IngressComponents, *, over_cap_only: bool = False) -> None:
        self._parts = parts
        self._over_cap_only = over_cap_only
        self._accepted = parts.metrics.requests.labels(outcome=ACCEPTED.outcome)
        self._accepted_latency = parts.metrics.latency.labels(outcome=ACCEPTED.outcome)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        request = Request(scope, receive)
        request_id = os.urandom(16).hex()
        status = ACCEPTED.status
        try:
            job_id = await self._accept(request, request_id)
        except IngressRefusal as refusal:
            status, payload = refusal.status_code, self._refuse(request, request_id, refusal, started)
        except Exception:  # a bug: answer 500 (GREEN API resends), log and count it; never drop it silently
            log.exception("webhook failed unexpectedly", extra=fields(request_id=request_id))
            self._parts.metrics.requests.labels(outcome=INTERNAL_ERROR.outcome).inc()
            status, payload = INTERNAL_ERROR.status, {"status": "error", "request_id": request_id}
        else:
            self._accepted.inc()
            self._accepted_latency.observe(time.perf_counter() - started)
            payload = {"status": "accepted", "request_id": request_id, "job_id": job_id}
        await _send_json(send, status, payload, request_id)

    async def _accept(self, request: Request, request_id: str) -> str:
        parts = self._parts
        headers = _read_headers(request.scope)
        client = request.client.host if request.client else None
        if parts.addresses.enabled:
            parts.addresses.check(
                client,
                join_header_lines(headers.get(b"x-forwarded-for", [])),
                join_header_lines(headers.get(b"x-real-ip", [])),  # two lines: not an address, refused
            )
        token_id = parts.auth.authenticate(headers.get(b"authorization", []))
        if self._over_cap_only:
            declared = _first(headers, DECLARED_LENGTH_HEADER) or ""
            declared = declared if declared.isdigit() else "an unknown number of"  # chunked: nginx knows none
            raise OverCap(f"nginx refused a body of {declared} bytes over the hard cap (token {token_id})")
        cap, limit = parts.settings.body_cap_bytes, parts.settings.max_body_bytes
        check_declared_length(_first(headers, b"content-length"), cap)
        raw = await read_limited(request.receive, cap)
        over_limit = limit if len(raw) > limit else None
        envelope = Envelope.of_bytes(
            raw, "webhook", request_id=request_id, token_id=token_id, over_limit=over_limit
        )
        try:
            return await parts.committer.submit(envelope)
        except IngressRefusal:
            parts.metrics.redis_errors.inc()
            raise

    def _refuse(
        self, request: Request, request_id: str, refusal: IngressRefusal, started: float
    ) -> dict[str, str]:
        metrics = self._parts.metrics
        metrics.requests.labels(outcome=refusal.outcome).inc()
        metrics.latency.labels(outcome=refusal.outcome).observe(time.perf_counter() - started)
        log.log(
            refusal.log_level,
            "webhook refused",
            extra=fields(
                status=refusal.status_code,
                outcome=refusal.outcome,
                reason=refusal.reason,
                request_id=request_id,
                peer=request.client.host if request.client else None,
            ),
        )
        return {"status": "refused", "reason": refusal.reason, "request_id": request_id}


def _read_headers(scope: Scope) -> dict[bytes, list[str]]:
    """Every line of each header in :data:`READ_HEADERS`, decoded as Starlette would (latin-1), in one pass
    over the request's headers instead of one per header asked for."""
    found: dict[bytes, list[str]] = {}
    for name, value in scope["headers"]:
        if name in READ_HEADERS:
            found.setdefault(name, []).append(value.decode("latin-1"))
    return found


def _first(headers: dict[bytes, list[str]], name: bytes) -> str | None:
    values = headers.get(name)
    return values[0] if values else None


async def _send_json(send: Send, status: int, payload: dict[str, str], request_id: str) -> None:
    """The whole response in two ASGI messages, without building a Response object per request."""
    body = orjson.dumps(payload)
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"x-request-id", request_id.encode()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
