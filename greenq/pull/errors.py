"""What can go wrong in the poller: GREEN API's errors (:mod:`greenq.core.greenapi.errors`) plus its own.

Every kind labels ``greenq_poller_errors_total``. Transient kinds are retried with capped exponential
backoff; :class:`AuthRefused` pauses only the instance concerned.
"""

from __future__ import annotations

from typing import Literal

from greenq.core.greenapi.errors import ApiErrorKind

ErrorKind = ApiErrorKind | Literal["enqueue"]

#: Every kind, so metrics can be initialised at zero for each instance.
ERROR_KINDS: tuple[ErrorKind, ...] = (
    "server_error",
    "timeout",
    "connection",
    "auth",
    "rate_limited",
    "bad_response",
    "enqueue",
)


class PollerError(Exception):
    """Base of the poller's own errors."""


class UnknownInstance(PollerError):
    """A command named an instance that GREENQ_INSTANCES does not configure."""


class SettingsNotSaved(PollerError):
    """setSettings answered without ``{"saveSettings": true}``."""
