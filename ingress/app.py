"""The webhook ingress: authenticate, store the body as received, answer.

It never validates schemas and never runs handlers; a 200 is sent only after Redis holds the notification.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from redis.asyncio import Redis as AsyncRedis
from redis.exceptions import RedisError
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from greenq.core.logs import fields
from greenq.core.settings import OVER_CAP_PATH, IngressSettings
from greenq.ingress.answers import openapi_responses
from greenq.ingress.components import IngressComponents, build_components
from greenq.ingress.metrics import render
from greenq.ingress.webhook import WebhookEndpoint

log = logging.getLogger("greenq.ingress")


class IngressApp:
    """The outer ASGI app: POSTs to the webhook path go straight to the endpoint; all else to FastAPI.

    FastAPI's middleware stack (error, telemetry, exit-stack middlewares, routing) costs more per request
    than everything the webhook does, so the hot path skips it. The same endpoint is still mounted in
    FastAPI (for the 405 on other methods) and documented in its OpenAPI schema.
    """

    def __init__(self, api: FastAPI, webhooks: dict[str, WebhookEndpoint]) -> None:
        self.api = api
        self._webhooks = webhooks

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        webhook = self._webhooks.get(scope["path"]) if scope["type"] == "http" else None
        if webhook is not None and scope["method"] == "POST":
            await webhook(scope, receive, send)
        else:
            await self.api(scope, receive, send)


def create_app(settings: IngressSettings, connection: AsyncRedis | None = None) -> IngressApp:
    """The ASGI app; ``connection`` lets tests and embedders supply their own Redis client."""
    parts = build_components(settings, connection)
    app = FastAPI(
        title="greenq ingress",
        version="0.1.0",
        lifespan=_lifespan(parts),
        docs_url=None,
        redoc_url=None,
        redirect_slashes=False,
    )
    app.state.components = parts
    webhook = WebhookEndpoint(parts)
    app.router.routes.insert(0, Route(settings.webhook_path, webhook, methods=["POST"]))
    app.openapi = lambda: _openapi(app, settings.webhook_path)  # type: ignore[method-assign]
    _add_operational_routes(app, parts)
    over_cap = WebhookEndpoint(parts, over_cap_only=True)
    return IngressApp(app, {settings.webhook_path: webhook, OVER_CAP_PATH: over_cap})


def _lifespan(parts: IngressComponents) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """Start the group committer before the first request; stop it and close Redis after the last."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        _log_ready(parts)
        await parts.committer.start()
        yield
        await parts.committer.stop()
        await parts.redis.aclose()

    return lifespan


def _log_ready(parts: IngressComponents) -> None:
    settings = parts.settings
    if parts.auth.is_open:
        log.warning("ingress accepts requests WITHOUT a token (GREENQ_ALLOW_UNAUTHENTICATED=true)")
    log.info(
        "ingress ready",
        extra=fields(
            webhook_path=settings.webhook_path,
            tokens=sorted(settings.tokens),
            allowlist=bool(settings.allowed_ips),
            max_body_bytes=settings.max_body_bytes,
            body_cap_bytes=settings.body_cap_bytes,
        ),
    )


def _add_operational_routes(app: FastAPI, parts: IngressComponents) -> None:
    """Liveness, readiness and metrics: the routes an orchestrator and Prometheus call."""

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        """The process is alive (no dependency checks: a Redis outage must not restart us)."""
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> Response:
        """Ready when Redis answers, so a balancer stops sending to an ingress that would only 503."""
        try:
            await parts.redis.ping()
        except RedisError as error:
            return JSONResponse({"status": "unavailable", "redis": type(error).__name__}, status_code=503)
        return JSONResponse({"status": "ready"})

    @app.get("/metrics", response_class=PlainTextResponse)
    async def metrics() -> Response:
        body = render(parts.registry, parts.settings.metrics_dir)
        return PlainTextResponse(body, media_type=CONTENT_TYPE_LATEST)


def _openapi(app: FastAPI, webhook_path: str) -> dict[str, Any]:
    """FastAPI's schema plus the webhook route, which is plain ASGI and so invisible to FastAPI."""
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version, routes=app.routes)
        schema["paths"][webhook_path] = WEBHOOK_OPENAPI
        app.openapi_schema = schema
    return app.openapi_schema


WEBHOOK_OPENAPI: dict[str, Any] = {
    "post": {
        "summary": "Receive one GREEN API notification",
        "description": "200 means the body is stored in Redis exactly as received, whatever it is (the "
        "workers dead-letter what is not a notification). Content-Type is not required. The Authorization "
        "header carries the instance's webhookUrlToken.",
        "parameters": [
            {"name": "Authorization", "in": "header", "required": True, "schema": {"type": "string"}}
        ],
        "requestBody": {
            "required": True,
            "description": "A GREEN API notification (a JSON object). Any other body from an authenticated "
            "sender is stored too and answered 200, so GREEN API never stalls on it.",
            "content": {"application/json": {"schema": {"type": "object"}}},
        },
        "responses": openapi_responses(),
    }
}
