"""Running a notification's handlers, each with its own write buffer, kept only if the handler returned.

A handler that raises has its buffered writes discarded, so its retry cannot apply them twice; a handler's
bug never takes its batch down.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from redis import Redis

from greenq.core.logs import fields
from greenq.core.notification import Notification
from greenq.core.settings import WorkerSettings
from greenq.workers.context import HandlerContext
from greenq.workers.reporting import notification_ids
from greenq.workers.results import QueuedWrite, Writes
from greenq.workers.router import Route
from greenq.workers.state import ChatStates

log = logging.getLogger("greenq.worker")


@dataclass(frozen=True, slots=True)
class HandlerFailure:
    """A handler that raised, and what it raised (clipped)."""

    name: str
    error: str


@dataclass(frozen=True, slots=True)
class HandlerRun:
    """The writes of the handlers that returned, and the handlers that raised."""

    writes: Writes
    failures: tuple[HandlerFailure, ...]

    @property
    def failed_names(self) -> tuple[str, ...]:
        return tuple(failure.name for failure in self.failures)


def run_handlers(
    notification: Notification,
    routes: Sequence[Route],
    redis: Redis,
    settings: WorkerSettings,
    handler_log: logging.Logger,
    *,
    states: ChatStates,
    state_key: str | None,
) -> HandlerRun:
    """Run every route's handler in order; a failure does not stop the ones after it. Each handler sees the
    chat state its predecessors (in this notification and earlier ones of the batch) left."""
    writes: list[QueuedWrite] = []
    failures: list[HandlerFailure] = []
    for route in routes:
        buffer = redis.pipeline(transaction=False)
        state = states.open(state_key)
        context = HandlerContext(redis, buffer, settings, handler_log, state)
        try:
            route.handler(notification, context)
        except Exception as error:  # a handler's bug must not take the batch down; it is retried
            failures.append(HandlerFailure(route.name, f"{type(error).__name__}: {str(error)[:200]}"))
            log.warning(
                "handler raised",
                exc_info=True,
                extra=fields(
                    **notification_ids(notification.data),
                    handler=route.name,
                    attempt=notification.envelope.attempt,
                ),
            )
            continue
        writes.extend(QueuedWrite(route.name, args, options) for args, options in buffer.command_stack)
        writes.extend(states.keep(state_key, route.name, state, settings.state_ttl_seconds))
    return HandlerRun(tuple(writes), tuple(failures))
