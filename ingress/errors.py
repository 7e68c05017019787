"""Why the ingress refuses a request: one exception per refusal row of ``ingress/answers.py``.

Each class names its row (``outcome=...``); the status code, metric outcome and log level come from it.
"""

from __future__ import annotations

from typing import Any, ClassVar

from greenq.ingress.answers import answer_for


class IngressRefusal(Exception):
    """A request the ingress answers non-200. ``reason`` is safe to log and to send back (no secrets)."""

    status_code: ClassVar[int]
    outcome: ClassVar[str]
    log_level: ClassVar[int]

    def __init_subclass__(cls, *, outcome: str, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        answer = answer_for(outcome)
        if answer.log_level is None:
            raise TypeError(f"{cls.__name__}: a refusal is always logged, {outcome!r} has no log level")
        cls.status_code, cls.outcome, cls.log_level = answer.status, answer.outcome, answer.log_level

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class BadRequest(IngressRefusal, outcome="bad_request"):
    """Broken HTTP framing (a non-numeric Content-Length, a body cut short): no complete body to store.

    The body's *content* is never a reason to refuse: an authenticated sender's body is always stored.
    """


class Unauthorized(IngressRefusal, outcome="unauthorized"):
    """Missing, repeated or wrong ``Authorization`` token."""


class Forbidden(IngressRefusal, outcome="forbidden"):
    """The client address is outside the allowlist."""


class OverCap(IngressRefusal, outcome="over_cap"):
    """The body is over the hard cap (``body_cap_bytes``): the one refusal that stalls a GREEN API
    instance, so it is logged at ERROR and alerted."""


class Unavailable(IngressRefusal, outcome="unavailable"):
    """Redis could not take the notification; 503 makes GREEN API resend it."""
