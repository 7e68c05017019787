"""Named points in a batch's life where a fault-injection test can stop a process.

Production code calls :func:`reached` at each point; it costs one attribute check. Only tests install a hook
(e.g. one that SIGKILLs the process the n-th time a point is reached), so a crash can be placed exactly
between two steps instead of hoping a timed kill lands there.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

#: A batch's handlers ran and its writes are queued; nothing is committed yet.
HANDLERS_RAN: Final = "handlers-ran"
#: The batch's transaction committed; RQ has not yet recorded the job's success.
COMMITTED: Final = "committed"
#: A committed batch scheduled at least one retry job.
RETRY_SCHEDULED: Final = "retry-scheduled"
#: An ordered-mode producer's entries and scheduled flags landed; the drain jobs it owes are not queued yet.
ENTRIES_APPENDED: Final = "entries-appended"
#: ``greenq dlq replay`` locked a dead letter and is about to move it back to the queue.
REPLAY_LOCKED: Final = "replay-locked"
#: ``greenq dlq replay`` committed the replay job and the deletion of the dead letter.
REPLAY_COMMITTED: Final = "replay-committed"
#: The sender recorded an outbox entry as ``sending`` and is about to call GREEN API.
SEND_STARTED: Final = "send-started"
#: GREEN API answered a send call with an idMessage; the sender has not recorded it yet.
SEND_ANSWERED: Final = "send-answered"
#: The sender committed an entry as sent (its record, idMessage index, XACK and XDEL).
SEND_RECORDED: Final = "send-recorded"

Hook = Callable[[str], None]


class _Installed:
    hook: Hook | None = None


def install(hook: Hook | None) -> None:
    """Call ``hook(name)`` at every checkpoint of this process (None removes it)."""
    _Installed.hook = hook


def reached(name: str) -> None:
    """Mark that this process reached checkpoint ``name``."""
    hook = _Installed.hook
    if hook is not None:
        hook(name)
