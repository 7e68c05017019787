"""What a handler gets besides the notification: Redis, the batch's buffered writes, settings, a logger."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from redis import Redis
from redis.client import Pipeline

from greenq.core.settings import WorkerSettings
from greenq.workers.state import ChatState


@dataclass(frozen=True)
class HandlerContext:
    """Shared, long-lived resources plus this handler call's write buffer; handlers must not close them.

    ``writes`` is a Redis pipeline: commands queued on it are committed in one MULTI/EXEC with the whole
    batch (its outcomes, dead letters and dedup markers), and only if the handler returns. A handler that
    raises has its queued writes discarded, so its retry cannot apply them twice. Use ``redis`` for reads
    and for anything that must happen immediately.

    ``state`` is the chat's state (a name and data, README: Per-chat state), read before the batch ran
    and committed like ``writes``: only if the handler returns.
    """

    redis: Redis
    writes: Pipeline
    settings: WorkerSettings
    log: logging.Logger
    state: ChatState = field(default_factory=lambda: ChatState(None))
