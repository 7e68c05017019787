"""What can go wrong talking to GREEN API, named by what the poller does about it.

Every :class:`ApiError` has a ``kind`` (the ``kind`` label of ``greenq_poller_errors_total``). Transient kinds
are retried with capped exponential backoff; :class:`AuthRefused` pauses only the instance concerned.
Messages name the instance and the API method, never the token or a URL that contains it.
"""

from __future__ import annotations

from typing import ClassVar, Literal

ErrorKind = Literal[
    "server_error", "timeout", "connection", "auth", "rate_limited", "bad_response", "enqueue"
]

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
    """Base of the poller's errors."""


class ApiError(PollerError):
    """A GREEN API call did not give a usable answer."""

    kind: ClassVar[ErrorKind]

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ServerError(ApiError):
    """HTTP 5xx: GREEN API asks clients to repeat the request (retried with backoff)."""

    kind = "server_error"


class RequestTimedOut(ApiError):
    """No answer in time (retried with backoff)."""

    kind = "timeout"


class ConnectionFailed(ApiError):
    """Could not connect, or the connection broke mid-answer (retried with backoff)."""

    kind = "connection"


class RateLimited(ApiError):
    """HTTP 429 (retried after ``Retry-After`` or the backoff, whichever is longer)."""

    kind = "rate_limited"

    def __init__(self, message: str, retry_after: float | None) -> None:
        super().__init__(message, 429)
        self.retry_after = retry_after


class AuthRefused(ApiError):
    """HTTP 401/403/404: wrong apiTokenInstance, idInstance or apiUrl; the instance pauses, others go on."""

    kind = "auth"


class BadResponse(ApiError):
    """Another status, or a body that is not the documented JSON (retried with backoff)."""

    kind = "bad_response"


class UnknownInstance(PollerError):
    """A command named an instance that GREENQ_INSTANCES does not configure."""


class SettingsNotSaved(PollerError):
    """setSettings answered without ``{"saveSettings": true}``."""
