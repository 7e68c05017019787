"""Running a notification's handlers, each with its own write buffer, kept only if the handler returned.

A handler that raises has its buffered writes (its state changes and outbox entries included) discarded,
so its retry cannot apply them twice; a handler's bug never takes its batch down.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from redis import Redis

from greenq.core import partitions
from greenq.core.logs import fields
from greenq.core.notification import Notification
from greenq.core.settings import WorkerSettings
from greenq.workers.context import HandlerContext
from greenq.workers.reporting import notification_ids
from greenq.workers.results import QueuedWrite, Valid, Writes
from greenq.workers.router import Route
from greenq.workers.sending import Origin, Outbox, Sends
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


#: Why ``ctx.sender_state`` refuses changes when the batch keeps none for the notification.
NO_SENDER_STATE: Final = (
    "no per-(chat, sender) state here: the notification has no sender, or the router keeps no state"
)


def run_handlers(
    read: Valid,
    routes: Sequence[Route],
    redis: Redis,
    settings: WorkerSettings,
    handler_log: logging.Logger,
    *,
    states: ChatStates,
) -> HandlerRun:
    """Run every route's handler in order; a failure does not stop the ones after it. Each handler sees the
    chat (and sender) state its predecessors (in this notification and earlier ones of the batch) left."""
    notification = read.notification
    writes: list[QueuedWrite] = []
    failures: list[HandlerFailure] = []
    partition = partitions.partition_of(read.chat, settings.partitions)
    for route in routes:
        buffer = redis.pipeline(transaction=False)
        state = states.open(read.state_key)
        sender_state = states.open(read.sender_state_key, NO_SENDER_STATE)
        origin = _origin(read, route.name, partition)
        send = Sends(Outbox(buffer, origin, settings.reply_ttl_seconds))
        context = HandlerContext(redis, buffer, settings, handler_log, state, sender_state, send)
        try:
            route.handler(notification, context)
        except Exception as error:  # a handler's bug must not take the batch down; it is retried
            failures.append(HandlerFailure(route.name, f"{type(error).__name__}: {str(error)[:200]}"))
            _log_failure(notification, route.name)
            continue
        writes.extend(QueuedWrite(route.name, args, options) for args, options in buffer.command_stack)
        ttl = settings.state_ttl_seconds
        writes.extend(states.keep(read.state_key, route.name, state, ttl))
        writes.extend(states.keep(read.sender_state_key, route.name, sender_state, ttl))
    return HandlerRun(tuple(writes), tuple(failures))


def _origin(read: Valid, handler: str, partition: int) -> Origin:
    """Where ``handler``'s messages for ``read`` come from: its outbox stream is the partition of the
    notification (in both ordering modes), its entry ids follow from the unit of work being decided."""
    notification = read.notification
    instance = notification.id_instance
    return Origin(
        unit=read.claim.unit,
        handler=handler,
        partition=partition,
        instance=None if instance is None else str(instance),
        chat=notification.chat_id,
        id_message=notification.id_message,
    )


def _log_failure(notification: Notification, handler: str) -> None:
    log.warning(
        "handler raised",
        exc_info=True,
        extra=fields(
            **notification_ids(notification.data), handler=handler, attempt=notification.envelope.attempt
        ),
    )
