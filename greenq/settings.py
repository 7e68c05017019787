"""Typed settings, read once at start-up from ``GREENQ_*`` environment variables and an optional ``.env``.

Each process builds the one settings object it needs and passes it down; no module reads the environment
later. List-valued variables accept comma-separated text (``GREENQ_ALLOWED_IPS=1.2.3.4,10.0.0.0/8``).
"""

from __future__ import annotations

import ipaddress
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Placeholder values refused as tokens, so an example file cannot go to production unchanged.
PLACEHOLDER_TOKENS = frozenset(
    {"change-me", "changeme", "secret", "token", "xxx", "", "replace-with-a-long-random-token"}
)

DEFAULT_MAX_BODY_BYTES = 1024 * 1024


def _split_csv(value: object) -> object:
    """Turn ``"a, b"`` into ``["a", "b"]``; JSON-looking text and lists pass through unchanged."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            import json

            return json.loads(text)
        return [part.strip() for part in text.split(",") if part.strip()]
    return value


def parse_tokens(value: object) -> dict[str, SecretStr]:
    """Tokens as ``name=token`` pairs (comma-separated), a JSON object, or one bare token named ``default``.

    The name is what logs, metrics and jobs carry; the token itself never leaves this object.
    """
    if isinstance(value, dict):
        pairs = {
            str(k): str(v.get_secret_value() if isinstance(v, SecretStr) else v) for k, v in value.items()
        }
    elif isinstance(value, str):
        text = value.strip()
        if text.startswith("{"):
            import json

            pairs = {str(k): str(v) for k, v in json.loads(text).items()}
        elif text and "=" not in text:
            pairs = {"default": text}
        else:
            pairs = {}
            for item in filter(None, (part.strip() for part in text.split(","))):
                name, sep, token = item.partition("=")
                if not sep or not name.strip():
                    raise ValueError("each GREENQ_TOKENS item must be name=token (value not shown)")
                pairs[name.strip()] = token.strip()
    else:
        raise ValueError(f"tokens must be text or a mapping, got {type(value).__name__}")
    for name, token in pairs.items():
        if token.lower() in PLACEHOLDER_TOKENS:
            raise ValueError(f"token {name!r} is empty or a placeholder; set a real secret")
    return {name: SecretStr(token) for name, token in pairs.items()}


class CommonSettings(BaseSettings):
    """What every greenq process needs: where Redis is and how to log."""

    model_config = SettingsConfigDict(env_prefix="GREENQ_", env_file=".env", extra="ignore")

    redis_url: str = Field(
        default="redis://127.0.0.1:6379/0",
        description="Redis URL (redis://[:password@]host:port/db or rediss:// for TLS).",
    )
    redis_socket_timeout: float = Field(default=5.0, gt=0, description="Seconds before a Redis call fails.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(default="INFO")


class IngressSettings(CommonSettings):
    """The webhook receiver."""

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    processes: int = Field(default=1, ge=1, description="uvicorn worker processes in one ingress.")
    webhook_path: str = Field(default="/green-api/webhook/", pattern=r"^/")
    tokens: Annotated[dict[str, SecretStr], NoDecode] = Field(default_factory=dict)
    allow_unauthenticated: bool = Field(
        default=False, description="Accept requests without a token. Only for closed networks; warns."
    )
    allowed_ips: Annotated[list[IPNetwork], NoDecode] = Field(default_factory=list)
    trusted_proxies: Annotated[list[IPNetwork], NoDecode] = Field(default_factory=list)
    max_body_bytes: int = Field(default=DEFAULT_MAX_BODY_BYTES, ge=1024)
    metrics_dir: str | None = Field(
        default=None, description="prometheus-client multiprocess directory (set by `greenq ingress`)."
    )

    _split_networks = field_validator("allowed_ips", "trusted_proxies", mode="before")(
        classmethod(lambda cls, v: _split_csv(v))
    )

    @field_validator("tokens", mode="before")
    @classmethod
    def _parse_tokens(cls, value: Any) -> dict[str, SecretStr]:
        return parse_tokens(value)

    @model_validator(mode="after")
    def _require_auth(self) -> IngressSettings:
        if not self.tokens and not self.allow_unauthenticated:
            raise ValueError(
                "no webhook token configured: set GREENQ_TOKENS (name=token,...) "
                "or explicitly GREENQ_ALLOW_UNAUTHENTICATED=true"
            )
        return self


class WorkerSettings(CommonSettings):
    """The validating, routing worker."""

    router: str = Field(
        default="workers.handlers.builtin:default_router",
        description="module:attribute of the Router whose handlers run.",
    )
    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(default=9100, ge=0, le=65535, description="0 disables the metrics server.")
    max_retries: int = Field(default=3, ge=0, description="Handler retries before a dead letter.")
    retry_backoff: Annotated[list[float], NoDecode] = Field(
        default_factory=lambda: [5.0, 30.0, 120.0],
        description="Seconds before retry n (the last value repeats).",
    )
    stream_maxlen: int = Field(default=100_000, ge=1, description="Approximate cap of each event stream.")
    with_scheduler: bool = Field(default=True, description="Run RQ's scheduler (needed for delayed retries).")

    _split_backoff = field_validator("retry_backoff", mode="before")(
        classmethod(lambda cls, v: _split_csv(v))
    )

    def backoff_for(self, attempt: int) -> float:
        """Delay before re-running a notification whose ``attempt``-th try failed."""
        if not self.retry_backoff:
            return 0.0
        return self.retry_backoff[min(attempt, len(self.retry_backoff)) - 1]
