"""The ways a notification's processing can end, and the log level each one is reported at."""

from __future__ import annotations

import logging
from enum import StrEnum


class Outcome(StrEnum):
    """Final outcome of one notification (or, ``unsent``, of one outbox entry); the ``outcome`` label."""

    HANDLED = "handled"  # validated and every matching handler succeeded
    UNHANDLED = "unhandled"  # known type, no handler matched: acknowledged and dropped
    UNKNOWN_TYPE = "unknown_type"  # typeWebhook/typeMessage we have no schema for: kept for the operator
    INVALID = "invalid"  # schema violation or unreadable body: dead letter
    TOO_LARGE = "too_large"  # body over the processing limit: stored whole in the dead letter, not parsed
    FAILED = "failed"  # a handler kept raising after all retries: dead letter
    DUPLICATE = "duplicate"  # already processed within the dedup window (a resend): dropped
    UNSENT = "unsent"  # an outbox entry the sender could not deliver (4xx, too old, unreadable): dead letter

    @property
    def log_level(self) -> int:
        """Levels the GREEN API guide prescribes: schema problems ERROR, new types WARNING, unused DEBUG."""
        return _LEVELS[self]

    @property
    def is_dead_letter(self) -> bool:
        """Outcomes whose notification is kept in the dead-letter stream."""
        return self in (
            Outcome.INVALID,
            Outcome.TOO_LARGE,
            Outcome.FAILED,
            Outcome.UNKNOWN_TYPE,
            Outcome.UNSENT,
        )


_LEVELS = {
    Outcome.HANDLED: logging.INFO,
    Outcome.UNHANDLED: logging.DEBUG,
    Outcome.UNKNOWN_TYPE: logging.WARNING,
    Outcome.INVALID: logging.ERROR,
    Outcome.TOO_LARGE: logging.ERROR,
    Outcome.FAILED: logging.ERROR,
    Outcome.DUPLICATE: logging.INFO,
    Outcome.UNSENT: logging.ERROR,
}
