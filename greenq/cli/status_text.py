"""``greenq status`` for a human: the :class:`~greenq.core.status.Status` read from Redis, as text."""

from __future__ import annotations

from greenq.core import keys
from greenq.core.contract import FAILURE_TTL
from greenq.core.redis_memory import describe
from greenq.core.status import Status


def render_text(status: Status) -> str:
    """The human-readable report."""
    backlog = status.backlog
    lines = [
        f"queue {status.queue} (read {status.read_at})",
        f"  waiting            {backlog.depth} (oldest {_duration(backlog.oldest_age_seconds)})",
        *_held_lines(status),
        f"  scheduled retries  {status.scheduled}",
        f"  started            {status.started}",
        f"  failed (RQ)        {status.failed}{_failed_note(status)}",
        f"redis memory         {describe(status.memory)}",
        f"workers alive        {len(status.workers)}",
    ]
    for worker in status.workers:
        beat = "never" if worker.heartbeat_age_seconds is None else _duration(worker.heartbeat_age_seconds)
        job = worker.current_job or "-"
        where = f"{worker.hostname} pid {worker.pid}"
        lines.append(f"  {worker.name}  {worker.state}  job {job}  heartbeat {beat} ago  {where}")
    dead = status.dead_letters
    lines.append(f"dead letters         {dead.total}")
    scope = "" if dead.complete else f" (of the oldest {sum(dead.by_outcome.values())})"
    for outcome, count in sorted(dead.by_outcome.items()):
        lines.append(f"  {outcome:<18} {count}{scope}")
    if status.outcomes is None:
        lines.append(f"outcomes             not recorded ({keys.OUTCOME_COUNTS} is empty)")
    else:
        lines.append("outcomes")
        lines.extend(f"  {outcome:<18} {count}" for outcome, count in sorted(status.outcomes.items()))
    return "\n".join(lines)


def _held_lines(status: Status) -> list[str]:
    """Ordered mode only: a held chat waits for its retry, and its later notifications behind it."""
    if status.held_chats is None:
        return []
    return [f"  held chats         {status.held_chats} (each waits for a retry of its failed notification)"]


def _failed_note(status: Status) -> str:
    if not status.failed:
        return ""
    oldest = _duration(status.failed_oldest_age_seconds)
    days = FAILURE_TTL // 86400
    return f" (oldest {oldest} ago; RQ deletes them after {days} days: run greenq dlq import-failed)"


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f}s"
    if seconds < 7200:
        return f"{seconds / 60:.1f}m"
    return f"{seconds / 3600:.1f}h"
