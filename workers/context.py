"""What a handler gets besides the notification: the process's Redis client, settings and a logger."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from redis import Redis

from greenq.settings import WorkerSettings


@dataclass(frozen=True)
class HandlerContext:
    """Shared, long-lived resources; handlers must not close them."""

    redis: Redis
    settings: WorkerSettings
    log: logging.Logger
