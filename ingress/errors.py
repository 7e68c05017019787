"""Why the ingress refuses a request; each refusal maps to one status code and one metric outcome."""

from __future__ import annotations

from typing import ClassVar


class IngressRefusal(Exception):
    """A request the ingress answers non-200. ``reason`` is safe to log and to send back (no secrets)."""

    status_code: ClassVar[int] = 400
    outcome: ClassVar[str] = "bad_request"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class BadRequest(IngressRefusal):
    """Empty body, not JSON, or not a JSON object: GREEN API never sends these."""


class Unauthorized(IngressRefusal):
    """Missing, repeated or wrong ``Authorization`` token."""

    status_code = 401
    outcome = "unauthorized"


class Forbidden(IngressRefusal):
    """The client address is outside the allowlist."""

    status_code = 403
    outcome = "forbidden"


class PayloadTooLarge(IngressRefusal):
    """The body is over ``max_body_bytes``."""

    status_code = 413
    outcome = "too_large"


class Unavailable(IngressRefusal):
    """Redis could not take the notification; 503 makes GREEN API resend it."""

    status_code = 503
    outcome = "unavailable"
