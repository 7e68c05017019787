"""Why the ingress refuses a request; each refusal maps to one status code and one metric outcome."""

from __future__ import annotations

import logging
from typing import ClassVar


class IngressRefusal(Exception):
    """A request the ingress answers non-200. ``reason`` is safe to log and to send back (no secrets)."""

    status_code: ClassVar[int] = 400
    outcome: ClassVar[str] = "bad_request"
    log_level: ClassVar[int] = logging.WARNING

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class BadRequest(IngressRefusal):
    """Broken HTTP framing (a non-numeric Content-Length, a body cut short): no complete body to store.

    The body's *content* is never a reason to refuse: an authenticated sender's body is always stored.
    """


class Unauthorized(IngressRefusal):
    """Missing, repeated or wrong ``Authorization`` token."""

    status_code = 401
    outcome = "unauthorized"


class Forbidden(IngressRefusal):
    """The client address is outside the allowlist."""

    status_code = 403
    outcome = "forbidden"


class OverCap(IngressRefusal):
    """The body is over the hard cap (``body_cap_bytes``): the one refusal that stalls a GREEN API
    instance, so it is logged at ERROR and alerted."""

    status_code = 413
    outcome = "over_cap"
    log_level = logging.ERROR


class Unavailable(IngressRefusal):
    """Redis could not take the notification; 503 makes GREEN API resend it."""

    status_code = 503
    outcome = "unavailable"
    log_level = logging.ERROR
