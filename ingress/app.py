"""The webhook ingress: authenticate, check the body is one JSON object, enqueue, answer.

It never validates schemas and never runs handlers; a 200 is sent only after Redis holds the notification.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry
from redis import Redis
from redis.exceptions import RedisError
from starlette.concurrency import run_in_threadpool

from greenq.contract import Envelope
from greenq.logs import fields
from greenq.redis_conn import connect
from greenq.settings import IngressSettings
from ingress.auth import TokenAuthenticator
from ingress.body import check_declared_length, decode_notification_body, read_limited
from ingress.client_ip import ClientAddressPolicy
from ingress.enqueue import Enqueuer
from ingress.errors import IngressRefusal
from ingress.metrics import IngressMetrics, render

log = logging.getLogger("greenq.ingress")


@dataclass(frozen=True)
class IngressComponents:
    """Everything a request needs, built once per process from the settings."""

    settings: IngressSettings
    redis: Redis
    auth: TokenAuthenticator
    addresses: ClientAddressPolicy
    enqueuer: Enqueuer
    metrics: IngressMetrics
    registry: CollectorRegistry


def build_components(settings: IngressSettings, connection: Redis | None = None) -> IngressComponents:
    redis = (
        connection if connection is not None else connect(settings.redis_url, settings.redis_socket_timeout)
    )
    registry = CollectorRegistry()
    return IngressComponents(
        settings=settings,
        redis=redis,
        auth=TokenAuthenticator(settings.tokens, settings.allow_unauthenticated),
        addresses=ClientAddressPolicy(settings.allowed_ips, settings.trusted_proxies),
        enqueuer=Enqueuer(redis),
        metrics=IngressMetrics.create(registry),
        registry=registry,
    )


def create_app(settings: IngressSettings, connection: Redis | None = None) -> FastAPI:
    """The ASGI app; ``connection`` lets tests and embedders supply their own Redis client."""
    parts = build_components(settings, connection)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if parts.auth.is_open:
            log.warning("ingress accepts requests WITHOUT a token (GREENQ_ALLOW_UNAUTHENTICATED=true)")
        log.info(
            "ingress ready",
            extra=fields(
                webhook_path=settings.webhook_path,
                tokens=sorted(settings.tokens),
                allowlist=bool(settings.allowed_ips),
                max_body_bytes=settings.max_body_bytes,
            ),
        )
        yield
        parts.redis.close()

    app = FastAPI(title="greenq ingress", version="0.1.0", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.components = parts

    @app.post(settings.webhook_path, responses={401: {}, 403: {}, 413: {}, 400: {}, 503: {}})
    async def receive_webhook(request: Request) -> Response:
        """Accept one GREEN API notification; 200 means it is stored in Redis."""
        started = time.perf_counter()
        request_id = uuid.uuid4().hex
        try:
            job_id = await _accept(parts, request, request_id)
        except IngressRefusal as refusal:
            return _refuse(parts, request, request_id, refusal, started)
        parts.metrics.requests.labels(outcome="accepted").inc()
        parts.metrics.latency.labels(outcome="accepted").observe(time.perf_counter() - started)
        return JSONResponse(
            {"status": "accepted", "request_id": request_id, "job_id": job_id},
            headers={"X-Request-ID": request_id},
        )

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        """The process is alive (no dependency checks: a Redis outage must not restart us)."""
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> Response:
        """Ready when Redis answers, so a balancer stops sending to an ingress that would only 503."""
        try:
            await run_in_threadpool(parts.redis.ping)
        except RedisError as error:
            return JSONResponse({"status": "unavailable", "redis": type(error).__name__}, status_code=503)
        return JSONResponse({"status": "ready"})

    @app.get("/metrics")
    async def metrics() -> Response:
        body = render(parts.registry, settings.metrics_dir)
        return PlainTextResponse(body, media_type=CONTENT_TYPE_LATEST)

    return app


async def _accept(parts: IngressComponents, request: Request, request_id: str) -> str:
    """Run the checks in order of cost, then store the notification; returns the RQ job id."""
    client = request.client.host if request.client else None
    parts.addresses.check(client, request.headers.get("x-forwarded-for"), request.headers.get("x-real-ip"))
    token_id = parts.auth.authenticate(request.headers.getlist("authorization"))
    limit = parts.settings.max_body_bytes
    check_declared_length(request.headers.get("content-length"), limit)
    body = decode_notification_body(await read_limited(request.stream(), limit))
    envelope = Envelope(body=body, source="webhook", request_id=request_id, token_id=token_id)
    try:
        return await run_in_threadpool(parts.enqueuer.enqueue, [envelope])
    except IngressRefusal:
        parts.metrics.redis_errors.inc()
        raise


def _refuse(
    parts: IngressComponents, request: Request, request_id: str, refusal: IngressRefusal, started: float
) -> Response:
    parts.metrics.requests.labels(outcome=refusal.outcome).inc()
    parts.metrics.latency.labels(outcome=refusal.outcome).observe(time.perf_counter() - started)
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
    return JSONResponse(
        {"status": "refused", "reason": refusal.reason, "request_id": request_id},
        status_code=refusal.status_code,
        headers={"X-Request-ID": request_id},
    )
