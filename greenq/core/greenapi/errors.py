"""What can go wrong calling GREEN API, named by what a caller does about it.

Every :class:`ApiError` has a ``kind`` (the poller's ``kind`` metric label) and says whether the request may
have reached GREEN API (``maybe_sent``): a timeout after the request was written, a connection lost before
the answer, or a 5xx could all follow a call GREEN API acted on; a refused connection cannot. Messages name
the instance and the API method, never the token or a URL that contains it.
"""

from __future__ import annotations

from typing import ClassVar, Literal

ApiErrorKind = Literal["server_error", "timeout", "connection", "auth", "rate_limited", "bad_response"]


class ApiError(Exception):
    """A GREEN API call did not give a usable answer."""

    kind: ClassVar[ApiErrorKind]

    def __init__(self, message: str, status: int | None = None, *, maybe_sent: bool = True) -> None:
        super().__init__(message)
        self.status = status
        #: False only when the request certainly never reached GREEN API (e.g. connection refused).
        self.maybe_sent = maybe_sent


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
        super().__init__(message, 429, maybe_sent=False)
        self.retry_after = retry_after


class AuthRefused(ApiError):
    """HTTP 401/403/404: wrong apiTokenInstance, idInstance or apiUrl."""

    kind = "auth"


class BadResponse(ApiError):
    """Another status, or a body that is not the documented JSON."""

    kind = "bad_response"
