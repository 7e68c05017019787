"""The simulator's ASGI app: GREEN API routes, control routes, and per instance a push task and a send
loop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import httpx2
from starlette.applications import Starlette
from starlette.routing import Route

from greenq.simulator import api_routes, control_routes
from greenq.simulator.config import SimulatorConfig
from greenq.simulator.push import WebhookPusher
from greenq.simulator.sending import SendLoop
from greenq.simulator.state import SimInstance

API_METHODS = ["GET", "POST", "DELETE", "PUT", "PATCH"]

ROUTES = [
    Route("/waInstance{id_instance:int}/{method}/{token}", api_routes.api_call, methods=API_METHODS),
    Route(
        "/waInstance{id_instance:int}/{method}/{token}/{argument}",
        api_routes.api_call,
        methods=API_METHODS,
    ),
    Route("/sim/instances", control_routes.list_instances, methods=["GET"]),
    Route(
        "/sim/instances/{id_instance:int}/notifications",
        control_routes.add_notifications,
        methods=["POST"],
    ),
    Route("/sim/instances/{id_instance:int}/stats", control_routes.stats, methods=["GET"]),
    Route("/sim/instances/{id_instance:int}/faults", control_routes.faults, methods=["POST", "DELETE"]),
    Route("/sim/instances/{id_instance:int}/journal", control_routes.journal, methods=["POST"]),
    Route("/sim/instances/{id_instance:int}/sent", control_routes.sent, methods=["GET"]),
    Route("/sim/instances/{id_instance:int}/incoming", control_routes.incoming, methods=["POST"]),
]


def create_app(config: SimulatorConfig) -> Starlette:
    """A fresh simulator holding ``config.instances``, all empty and in HTTP API (pull) mode."""
    instances = {
        id_instance: SimInstance(
            id_instance, token, config.journal_rate, config.journal_lag, config.send_rate
        )
        for id_instance, token in config.instances.items()
    }
    app = Starlette(routes=ROUTES, lifespan=_pushing(instances, config))
    app.state.instances = instances
    return app


def _pushing(
    instances: dict[int, SimInstance], config: SimulatorConfig
) -> Callable[[Starlette], AbstractAsyncContextManager[None]]:
    """The app's lifespan: per instance, one task delivers its webhooks (push mode) and one sends its outgoing
    messages, while the app runs."""

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        async with httpx2.AsyncClient(trust_env=False) as http:
            tasks = [
                asyncio.create_task(
                    WebhookPusher(instance, http, config.webhook_timeout, config.webhook_pause).run(),
                    name=f"push {instance.id_instance}",
                )
                for instance in instances.values()
            ]
            tasks.extend(
                asyncio.create_task(
                    SendLoop(instance, config.send_delay_ms, config.failing_chats).run(),
                    name=f"send {instance.id_instance}",
                )
                for instance in instances.values()
            )
            try:
                yield
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

    return lifespan
