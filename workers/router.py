"""Routing validated notifications to handlers, with an API users extend from their own module.

    router = Router()

    @router.on("incomingMessageReceived", type_message="textMessage", text=r"^/start")
    def greet(notification: Notification, ctx: HandlerContext) -> None: ...

    @router.message(state="menu")  # only while the chat's state (ctx.state) is "menu"
    def choose(notification: Notification, ctx: HandlerContext) -> None: ...

Every route whose filters match runs (fan-out), in registration order. Handler names are unique: a retry
re-runs only the handlers that failed, by name.
"""

from __future__ import annotations

import importlib
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeAlias

from greenq.core.logs import fields
from greenq.core.notification import Notification
from greenq.workers import legacy
from greenq.workers.context import HandlerContext
from greenq.workers.state import NO_STATE

Handler: TypeAlias = Callable[[Notification, HandlerContext], None]
Selector: TypeAlias = str | Iterable[str] | None


class RouterError(Exception):
    """The router is mis-declared or cannot be loaded (a start-up error, never retried)."""


def _as_set(selector: Selector) -> frozenset[str] | None:
    if selector is None:
        return None
    return frozenset((selector,)) if isinstance(selector, str) else frozenset(selector)


@dataclass(frozen=True)
class Route:
    """One handler with its filters; ``None`` means "any"."""

    name: str
    handler: Handler
    type_webhooks: frozenset[str] | None = None
    type_messages: frozenset[str] | None = None
    chats: frozenset[str] | None = None
    senders: frozenset[str] | None = None
    text: re.Pattern[str] | None = None
    states: frozenset[str] | None = None  #: chat state names (``NO_STATE``: a chat without state)

    def matches(self, notification: Notification, state: str = NO_STATE) -> bool:
        """Whether this route takes ``notification`` while its chat is in state ``state``."""
        return (
            _allows(self.states, state)
            and _allows(self.type_webhooks, notification.type_webhook)
            and _allows(self.type_messages, notification.type_message)
            and _allows(self.chats, notification.chat_id)
            and _allows(self.senders, notification.sender)
            and (
                self.text is None
                or (notification.text is not None and bool(self.text.search(notification.text)))
            )
        )


def _allows(allowed: frozenset[str] | None, value: str | None) -> bool:
    return allowed is None or (value is not None and value in allowed)


class Router:
    """An ordered set of routes; routers compose with :meth:`include`."""

    def __init__(self, *, chat_state: bool = True) -> None:
        """``chat_state=False``: its handlers never use ``ctx.state`` (nor ``state=``), so batches do not read
        their chats' state (one key fewer to read and WATCH per notification)."""
        self._routes: list[Route] = []
        self.chat_state = chat_state

    @property
    def routes(self) -> tuple[Route, ...]:
        return tuple(self._routes)

    def add(
        self,
        handler: Handler,
        type_webhook: Selector = None,
        *,
        type_message: Selector = None,
        chat: Selector = None,
        sender: Selector = None,
        text: str | re.Pattern[str] | None = None,
        name: str | None = None,
        state: Selector = None,
    ) -> Route:
        """Register ``handler``; filters are exact strings (or sets of them), ``text`` a regex, ``state``
        the chat's current state name(s) (README: Writing a bot)."""
        route = Route(
            name=name or f"{handler.__module__}.{handler.__qualname__}",
            handler=handler,
            type_webhooks=_as_set(type_webhook),
            type_messages=_as_set(type_message),
            chats=_as_set(chat),
            senders=_as_set(sender),
            text=re.compile(text) if isinstance(text, str) else text,
            states=_as_set(state),
        )
        self._append(route)
        return route

    def on(
        self,
        type_webhook: Selector = None,
        *,
        type_message: Selector = None,
        chat: Selector = None,
        sender: Selector = None,
        text: str | re.Pattern[str] | None = None,
        name: str | None = None,
        state: Selector = None,
    ) -> Callable[[Handler], Handler]:
        """Decorator form of :meth:`add`."""

        def register(handler: Handler) -> Handler:
            self.add(
                handler,
                type_webhook,
                type_message=type_message,
                chat=chat,
                sender=sender,
                text=text,
                name=name,
                state=state,
            )
            return handler

        return register

    def message(
        self,
        *,
        type_message: Selector = None,
        chat: Selector = None,
        sender: Selector = None,
        text: str | re.Pattern[str] | None = None,
        name: str | None = None,
        state: Selector = None,
    ) -> Callable[[Handler], Handler]:
        """Shortcut for incoming messages (``incomingMessageReceived``)."""
        return self.on(
            "incomingMessageReceived",
            type_message=type_message,
            chat=chat,
            sender=sender,
            text=text,
            name=name,
            state=state,
        )

    def include(self, other: Router) -> None:
        """Append another router's routes (e.g. the built-in sinks) after ours."""
        for route in other.routes:
            self._append(route)

    def match(self, notification: Notification, state: str = NO_STATE) -> list[Route]:
        """The routes that take ``notification`` while its chat is in state ``state``."""
        return [route for route in self._routes if route.matches(notification, state)]

    def _append(self, route: Route) -> None:
        if any(existing.name == route.name for existing in self._routes):
            raise RouterError(
                f"handler name {route.name!r} is registered twice; pass name= to tell them apart"
            )
        if route.states is not None and not self.chat_state:
            raise RouterError(f"handler {route.name!r} filters on state= in a Router(chat_state=False)")
        self._routes.append(route)


def load_router(path: str) -> Router:
    """The Router at ``module:attribute`` (the ``GREENQ_ROUTER`` setting); a built-in router's path from
    the previous release loads today's, with a warning that names it."""
    current = legacy.ROUTERS.get(path)
    if current is not None:
        logging.getLogger("greenq.worker").warning(
            f"GREENQ_ROUTER={path} is the previous release's name of a built-in router; loading {current}"
            f" instead: set GREENQ_ROUTER={current}",
            extra=fields(router=path, use=current),
        )
        path = current
    module_name, sep, attribute = path.partition(":")
    if not sep or not module_name or not attribute:
        raise RouterError(f"router path must look like 'package.module:router', got {path!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise RouterError(f"cannot import router module {module_name!r}: {error}") from error
    router = getattr(module, attribute, None)
    if not isinstance(router, Router):
        raise RouterError(f"{path!r} is not a greenq Router (got {type(router).__name__})")
    return router
