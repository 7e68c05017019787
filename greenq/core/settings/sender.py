"""Settings of ``greenq send``: the sender that delivers the outbox to GREEN API (``GREENQ_SEND_*``)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, PositiveFloat, PositiveInt, model_validator
from pydantic_settings import SettingsConfigDict

from greenq.core.settings.common import Port
from greenq.core.settings.instances import InstancesSettings
from greenq.core.settings.parsing import require_at_least
from greenq.core.settings.replies import ReplySettings

#: GREEN API keeps an unsent message in its queue for 24 hours; the sender gives up on an entry as late.
DEFAULT_MAX_AGE_SECONDS = 24 * 3600


class SenderSettings(InstancesSettings, ReplySettings):
    """``greenq send``: which instances send, how hard to retry, and how to check an ambiguous call."""

    model_config = SettingsConfigDict(hide_input_in_errors=True)
    needs_redis: ClassVar[bool] = True

    send_request_timeout: PositiveFloat = Field(default=30.0, description="Seconds one API call may take.")
    send_backoff_base: PositiveFloat = Field(default=1.0, description="First retry delay after a failure.")
    send_backoff_cap: PositiveFloat = Field(default=60.0, description="Longest retry delay.")
    send_max_age_seconds: PositiveFloat = Field(
        default=DEFAULT_MAX_AGE_SECONDS,
        description="An entry still unsent this long after its handler asked for it is dead-lettered.",
    )
    send_journal_lag_seconds: float = Field(
        default=120.0,
        ge=0,
        description="How late GREEN API's lastOutgoingMessages may show a sent message (GREEN API: 2 min); "
        "an ambiguous call is resent only after this long.",
    )
    send_clock_skew_seconds: float = Field(
        default=30.0, ge=0, description="Slack between our clock and GREEN API's when reading the journal."
    )
    send_lookup_deadline_seconds: PositiveFloat = Field(
        default=3600.0,
        description="How long the check after an ambiguous call keeps retrying an unavailable queue or "
        "journal before resending anyway (the one at-least-once case the sender chooses).",
    )
    send_concurrency: PositiveInt = Field(default=8, description="Chats sent to at once by one sender.")
    send_read_ahead: PositiveInt = Field(
        default=200, description="Entries of one partition read but not yet settled, at most."
    )
    send_lease_seconds: float = Field(
        default=15.0, ge=3, description="Lease on a partition's outbox; a dead sender's expires after it."
    )
    send_block_ms: PositiveInt = Field(default=1000, description="How long one read waits for new entries.")
    send_settings_cache_seconds: PositiveFloat = Field(
        default=300.0, description="How long delaySendMessagesMilliseconds from getSettings is reused."
    )
    send_stop_timeout: PositiveFloat = Field(
        default=30.0, description="On SIGTERM, how long calls in flight may take to finish."
    )
    send_metrics_host: str = "127.0.0.1"
    send_metrics_port: Port = Field(default=9103, description="0 disables the metrics server.")

    @model_validator(mode="after")
    def _check_backoff(self) -> SenderSettings:
        require_at_least(self, "send_backoff_cap", "send_backoff_base")
        return self
