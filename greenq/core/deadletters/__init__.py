"""Dead letters: the one package that knows the dead-letter stream (``keys.DEAD_LETTER_STREAM``).

- :mod:`.store`: one entry's fields and their encoding; append, read, walk, count and remove entries.
- :mod:`.filter`: which entries an operator means (outcome, type, instance, time range) and selecting them.
- :mod:`.replay`: back on the notification queue and out of the stream, exactly once (``replay.replay``).
- :mod:`.retention`: the age limit, applied hourly by workers and by ``greenq dlq trim``.
- :mod:`.failed_jobs`: RQ's failed registry, read and imported into the stream.

Code outside the package uses the names below (and :mod:`.replay`); nothing else reads or writes the stream.
"""

from __future__ import annotations

from greenq.core.deadletters.failed_jobs import FailedJobs, ImportReport, import_failed_jobs, read_failed_jobs
from greenq.core.deadletters.filter import DeadLetterFilter, TimeSpecError, parse_when, select
from greenq.core.deadletters.retention import RetentionSchedule, trim_dead_letters
from greenq.core.deadletters.store import DeadLetter, DeadLetterStore, DeadLetterSummary, UnreadableDeadLetter

__all__ = [
    "DeadLetter",
    "DeadLetterFilter",
    "DeadLetterStore",
    "DeadLetterSummary",
    "FailedJobs",
    "ImportReport",
    "RetentionSchedule",
    "TimeSpecError",
    "UnreadableDeadLetter",
    "import_failed_jobs",
    "parse_when",
    "read_failed_jobs",
    "select",
    "trim_dead_letters",
]
