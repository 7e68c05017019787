"""Every answer the webhook gives, in one table: status code, metric outcome, log level, description.

The refusal exceptions (``ingress/errors.py``), the ``outcome`` label values of the request metrics
(``ingress/metrics.py``) and the webhook's OpenAPI ``responses`` are all read from ``ANSWERS``, so a new
refusal is one new row and cannot be counted, logged or documented differently in three places.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Final


@dataclass(frozen=True, slots=True)
class Answer:
    """One way the webhook answers a request."""

    status: int
    #: The ``outcome`` label of ``greenq_ingress_requests_total`` and of the latency histogram.
    outcome: str
    #: Level of the per-request log line; None: not logged per request (the hot path of an accepted body).
    log_level: int | None
    #: Why the answer is given; the OpenAPI description of the status.
    description: str
    #: Listed in the OpenAPI document. A 500 is never promised: it is a bug, and the fuzz tests fail on it.
    documented: bool = True


ACCEPTED: Final = Answer(200, "accepted", None, "Stored: the body is durably in Redis, exactly as received.")
INTERNAL_ERROR: Final = Answer(
    500,
    "internal_error",
    logging.ERROR,
    "A bug in the ingress (logged with its traceback); nothing was stored and GREEN API resends.",
    documented=False,
)

ANSWERS: Final = (
    ACCEPTED,
    Answer(
        400,
        "bad_request",
        logging.WARNING,
        "Refused; nothing was stored. Broken HTTP framing (a non-numeric Content-Length, a body cut "
        "short): there is no complete body to store. The body's content is never a reason to refuse.",
    ),
    Answer(
        401,
        "unauthorized",
        logging.WARNING,
        "Refused; nothing was stored. The Authorization token is missing, repeated or wrong.",
    ),
    Answer(
        403,
        "forbidden",
        logging.WARNING,
        "Refused; nothing was stored. The client address is outside the allowlist.",
    ),
    Answer(
        413,
        "over_cap",
        logging.ERROR,
        "Refused; nothing was stored. The body is over the hard cap: the one refusal that stalls a GREEN "
        "API instance, so it is logged at ERROR and alerted.",
    ),
    INTERNAL_ERROR,
    Answer(
        503,
        "unavailable",
        logging.ERROR,
        "Refused; nothing was stored. Redis could not take the notification; GREEN API resends it.",
    ),
)

_BY_OUTCOME: Final = {answer.outcome: answer for answer in ANSWERS}


def answer_for(outcome: str) -> Answer:
    """The table row of ``outcome``; KeyError names an outcome the table does not have."""
    return _BY_OUTCOME[outcome]


def openapi_responses() -> dict[str, Any]:
    """The webhook's OpenAPI ``responses``: every documented answer, a JSON body each."""
    return {
        str(answer.status): {"description": answer.description, "content": {"application/json": {}}}
        for answer in ANSWERS
        if answer.documented
    }
