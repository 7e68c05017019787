"""Settings of pull mode (``greenq poll``, ``greenq instance``) and of ``greenq reconcile``."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, NonNegativeFloat, PositiveFloat, model_validator
from pydantic_settings import SettingsConfigDict

from greenq.core.settings.common import Port
from greenq.core.settings.instances import InstancesSettings
from greenq.core.settings.parsing import require_at_least
from greenq.core.settings.worker import DedupWindowSettings

#: GREEN API: a message can take up to 2 minutes to show in the journal.
JOURNAL_LAG_SECONDS = 120


class PollerSettings(InstancesSettings):
    """Pull mode (``greenq poll``) and the ``greenq instance`` commands."""

    model_config = SettingsConfigDict(hide_input_in_errors=True)

    receive_timeout: int = Field(
        default=20, ge=5, le=60, description="receiveTimeout in seconds: how long one long poll waits."
    )
    poll_request_timeout: PositiveFloat = Field(
        default=30.0, description="Seconds for other calls, and added to receiveTimeout for the long poll."
    )
    poll_backoff_base: PositiveFloat = Field(
        default=0.5, description="First retry delay after a transient error."
    )
    poll_backoff_cap: PositiveFloat = Field(
        default=30.0, description="Longest retry delay after transient errors."
    )
    poll_auth_backoff_base: PositiveFloat = Field(
        default=60.0, description="First pause of an instance GREEN API refuses (401/403/404)."
    )
    poll_auth_backoff_cap: PositiveFloat = Field(
        default=900.0, description="Longest pause of a refused instance."
    )
    poll_stop_timeout: NonNegativeFloat = Field(
        default=10.0,
        description="On SIGTERM, how long to keep retrying the delete of an enqueued item.",
    )
    poller_metrics_host: str = "127.0.0.1"
    poller_metrics_port: Port = Field(default=9101, description="0 disables the metrics server.")

    @model_validator(mode="after")
    def _check_backoff(self) -> PollerSettings:
        require_at_least(self, "poll_backoff_cap", "poll_backoff_base")
        require_at_least(self, "poll_auth_backoff_cap", "poll_auth_backoff_base")
        return self


class ReconcileSettings(PollerSettings, DedupWindowSettings):
    """``greenq reconcile``: the instances of GREENQ_INSTANCES, their journals, and the dedup window."""

    needs_redis: ClassVar[bool] = True

    reconcile_window_minutes: int = Field(
        default=30, ge=1, le=1440, description="How far back each run reads the journal (minutes=N)."
    )
    reconcile_grace_seconds: NonNegativeFloat = Field(
        default=60.0,
        description="Messages younger than this are left to normal delivery (they may be in flight).",
    )
    reconcile_rate_per_second: PositiveFloat = Field(
        default=1.0, description="Journal calls per second per instance (GREEN API rate-limits them)."
    )
    reconcile_max_attempts: int = Field(
        default=6, ge=1, description="Tries of one journal call (429, 5xx, timeouts) before the run fails."
    )
    reconcile_metrics_host: str = "127.0.0.1"
    reconcile_metrics_port: Port = Field(
        default=9102, description="Metrics port of `reconcile --every` (0 = off)."
    )

    @model_validator(mode="after")
    def _check_window(self) -> ReconcileSettings:
        if self.dedup_window_seconds == 0:
            raise ValueError("reconciliation needs deduplication: GREENQ_DEDUP_WINDOW_SECONDS is 0")
        if self.reconcile_window_minutes * 60 > self.dedup_window_seconds:
            raise ValueError(
                "GREENQ_RECONCILE_WINDOW_MINUTES reaches further back than the dedup window: "
                "messages older than the window would be delivered twice"
            )
        return self

    def check_interval(self, every: float) -> str | None:
        """Why running every ``every`` seconds could miss a late journal entry, or None when it cannot."""
        needed = every + JOURNAL_LAG_SECONDS + self.reconcile_grace_seconds
        if needed > self.reconcile_window_minutes * 60:
            return (
                f"--every {every:g} s + the journal's {JOURNAL_LAG_SECONDS} s lag + the "
                f"{self.reconcile_grace_seconds:g} s grace exceed the {self.reconcile_window_minutes} min "
                "window: raise GREENQ_RECONCILE_WINDOW_MINUTES"
            )
        return None
