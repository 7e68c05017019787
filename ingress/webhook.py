"""The webhook endpoint as a plain ASGI app: the hot path of the ingress.

It skips FastAPI's per-request machinery (dependency resolution, response models), which cost more than
everything greenq itself does per request; the app still documents the route in its OpenAPI schema.
Checks run in order of cost: source address, token, declared length, body; then group commit.
"""

from __future__ import annotations

import logging
import os
import time

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from greenq.contract import Envelope
from greenq.logs import fields
from ingress.body import check_declared_length, decode_notification_body, read_limited
from ingress.components import IngressComponents
from ingress.errors import IngressRefusal

log = logging.getLogger("greenq.ingress")


class WebhookEndpoint:
    """``POST <webhook_path>``: 200 only once the notification is in Redis."""

    def __init__(self, parts: IngressComponents) -> None:
        self._parts = parts
        self._accepted = parts.metrics.requests.labels(outcome="accepted")
        self._accepted_latency = parts.metrics.latency.labels(outcome="accepted")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        request = Request(scope, receive)
        request_id = os.urandom(16).hex()
        try:
            job_id = await self._accept(request, request_id)
        except IngressRefusal as refusal:
            response = self._refuse(request, request_id, refusal, started)
        else:
            self._accepted.inc()
            self._accepted_latency.observe(time.perf_counter() - started)
            body = {"status": "accepted", "request_id": request_id, "job_id": job_id}
            response = _json(body, 200, request_id)
        await response(scope, receive, send)

    async def _accept(self, request: Request, request_id: str) -> str:
        parts = self._parts
        headers = request.headers
        client = request.client.host if request.client else None
        parts.addresses.check(client, headers.get("x-forwarded-for"), headers.get("x-real-ip"))
        token_id = parts.auth.authenticate(headers.getlist("authorization"))
        limit = parts.settings.max_body_bytes
        check_declared_length(headers.get("content-length"), limit)
        body = decode_notification_body(await read_limited(request.stream(), limit))
        envelope = Envelope(body=body, source="webhook", request_id=request_id, token_id=token_id)
        try:
            return await parts.committer.submit(envelope)
        except IngressRefusal:
            parts.metrics.redis_errors.inc()
            raise

    def _refuse(self, request: Request, request_id: str, refusal: IngressRefusal, started: float) -> Response:
        metrics = self._parts.metrics
        metrics.requests.labels(outcome=refusal.outcome).inc()
        metrics.latency.labels(outcome=refusal.outcome).observe(time.perf_counter() - started)
        level = logging.ERROR if refusal.status_code >= 500 else logging.WARNING
        log.log(
            level,
            "webhook refused",
            extra=fields(
                status=refusal.status_code,
                outcome=refusal.outcome,
                reason=refusal.reason,
                request_id=request_id,
                peer=request.client.host if request.client else None,
            ),
        )
        body = {"status": "refused", "reason": refusal.reason, "request_id": request_id}
        return _json(body, refusal.status_code, request_id)


def _json(body: dict[str, str], status: int, request_id: str) -> Response:
    return Response(
        orjson.dumps(body),
        status_code=status,
        media_type="application/json",
        headers={"X-Request-ID": request_id},
    )
