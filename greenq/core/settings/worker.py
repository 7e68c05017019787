"""Settings of the validating, routing worker (``greenq worker``)."""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import Field, NonNegativeInt, field_validator
from pydantic_settings import NoDecode

from greenq.core.settings.common import CommonSettings, Port
from greenq.core.settings.parsing import split_csv
from greenq.core.settings.replies import ReplySettings


class DedupWindowSettings(CommonSettings):
    """The deduplication window: the workers apply it and ``greenq reconcile`` must stay inside it."""

    dedup_window_seconds: NonNegativeInt = Field(
        default=24 * 3600,
        description="How long a processed notification's identity is remembered (0 = off).",
    )


class WorkerSettings(DedupWindowSettings, ReplySettings):
    """The validating, routing worker (it writes reply records and statuses too: ``ReplySettings``)."""

    needs_redis: ClassVar[bool] = True

    router: str = Field(
        default="greenq.workers.handlers.builtin:default_router",
        description="module:attribute of the Router whose handlers run.",
    )
    metrics_host: str = "127.0.0.1"
    metrics_port: Port = Field(default=9100, description="0 disables the metrics server.")
    max_retries: NonNegativeInt = Field(default=3, description="Handler retries before a dead letter.")
    retry_backoff: Annotated[list[float], NoDecode] = Field(
        default_factory=lambda: [5.0, 30.0, 120.0],
        description="Seconds before retry n (the last value repeats).",
    )
    stream_maxlen: int = Field(default=100_000, ge=1, description="Approximate cap of each event stream.")
    stream_max_bytes: int = Field(
        default=16 * 2**20,
        ge=4096,
        description="Approximate byte budget of each event stream (trimmed to fit; README: Sizing).",
    )
    abandoned_job_seconds: int = Field(
        default=30, ge=5, description="A running job whose worker stopped heartbeating this long is re-run."
    )
    maintenance_interval_seconds: int = Field(
        default=15, ge=1, description="How often workers look for abandoned jobs (and clean RQ registries)."
    )
    state_ttl_seconds: int = Field(
        default=30 * 24 * 3600,
        ge=1,
        description="How long a chat's handler state (ctx.state) is kept after its last change.",
    )
    with_scheduler: bool = Field(default=True, description="Run RQ's scheduler (needed for delayed retries).")

    _split_backoff = field_validator("retry_backoff", mode="before")(classmethod(lambda cls, v: split_csv(v)))

    def backoff_for(self, attempt: int) -> float:
        """Delay before re-running a notification whose ``attempt``-th try failed."""
        if not self.retry_backoff:
            return 0.0
        return self.retry_backoff[min(attempt, len(self.retry_backoff)) - 1]
