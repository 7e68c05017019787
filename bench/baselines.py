"""Baseline ASGI apps for the ingress benchmark, served with the same uvicorn settings as greenq.

- ``noop_app``: a FastAPI POST endpoint that reads nothing and answers 200 (the ceiling).
- ``rpush_app``: a bare async FastAPI endpoint that RPUSHes the raw body to Redis (no auth, no checks).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import Response
from redis.asyncio import Redis

PATH = "/green-api/webhook/"


def noop_app() -> FastAPI:
    app = FastAPI()

    @app.post(PATH)
    async def webhook() -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    return app


def rpush_app() -> FastAPI:
    redis = Redis.from_url(os.environ["BENCH_REDIS_URL"])

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await redis.aclose()

    app = FastAPI(lifespan=lifespan)

    @app.post(PATH)
    async def webhook(request: Request) -> Response:
        await redis.rpush("bench:bodies", await request.body())
        return Response(b'{"status":"ok"}', media_type="application/json")

    return app
