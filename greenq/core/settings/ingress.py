"""Settings of the webhook receiver (``greenq ingress``)."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import Field, NonNegativeFloat, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from greenq.core.settings.common import CommonSettings, Port
from greenq.core.settings.limits import DEFAULT_BODY_CAP_BYTES, DEFAULT_MAX_BODY_BYTES
from greenq.core.settings.parsing import IPNetwork, parse_networks, parse_tokens, require_at_least


class IngressSettings(CommonSettings):
    """The webhook receiver."""

    model_config = SettingsConfigDict(hide_input_in_errors=True)  # errors must never echo a token
    needs_redis: ClassVar[bool] = True

    host: str = "127.0.0.1"
    port: Port = 8080
    processes: int = Field(default=1, ge=1, description="uvicorn worker processes in one ingress.")
    webhook_path: str = Field(default="/green-api/webhook/", pattern=r"^/")
    tokens: Annotated[dict[str, SecretStr], NoDecode] = Field(default_factory=dict)
    allow_unauthenticated: bool = Field(
        default=False, description="Accept requests without a token. Only for closed networks; warns."
    )
    allowed_ips: Annotated[list[IPNetwork], NoDecode] = Field(default_factory=list)
    trusted_proxies: Annotated[list[IPNetwork], NoDecode] = Field(default_factory=list)
    max_body_bytes: int = Field(
        default=DEFAULT_MAX_BODY_BYTES,
        ge=1024,
        description="Processing limit: larger bodies are stored but dead-lettered too_large, never parsed.",
    )
    body_cap_bytes: int = Field(
        default=DEFAULT_BODY_CAP_BYTES,
        ge=1024,
        description="Hard cap: larger bodies get 413 (GREEN API then stalls the instance; alerted).",
    )
    batch_max_size: int = Field(
        default=256, ge=1, description="Most notifications written in one Redis round trip."
    )
    batch_max_delay_ms: NonNegativeFloat = Field(
        default=1.0, description="Longest a request waits for others to share its write (group commit)."
    )
    batch_backlog_delay_ms: NonNegativeFloat = Field(
        default=20.0, description="The same wait while the queue has a backlog (bigger jobs, fewer of them)."
    )
    #: Set by ``greenq ingress --processes N`` on the settings it hands its uvicorn processes.
    metrics_dir: str | None = Field(
        default=None, description="prometheus-client multiprocess directory (set by `greenq ingress`)."
    )

    _split_networks = field_validator("allowed_ips", "trusted_proxies", mode="before")(
        classmethod(lambda cls, v: parse_networks(v))
    )

    @field_validator("tokens", mode="before")
    @classmethod
    def _parse_tokens(cls, value: Any) -> dict[str, SecretStr]:
        return parse_tokens(value)

    @model_validator(mode="after")
    def _cap_covers_limit(self) -> IngressSettings:
        require_at_least(self, "body_cap_bytes", "max_body_bytes")
        return self

    @model_validator(mode="after")
    def _require_auth(self) -> IngressSettings:
        if not self.tokens and not self.allow_unauthenticated:
            raise ValueError(
                "no webhook token configured: set GREENQ_TOKENS (name=token,...) "
                "or explicitly GREENQ_ALLOW_UNAUTHENTICATED=true"
            )
        return self
