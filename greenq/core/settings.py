"""Typed settings, read once at start-up from ``GREENQ_*`` environment variables and optional env files.

Env files, weakest first: ``.env`` in the working directory, then ``.greenq/greenq.env``, which a running
``greenq up`` writes there so that ``greenq status`` / ``greenq dlq`` in a second terminal find its Redis.
Real environment variables beat both.

Each process builds the one settings object it needs and passes it down; no module reads the environment
later. List-valued variables accept comma-separated text (``GREENQ_ALLOWED_IPS=1.2.3.4,10.0.0.0/8``).
"""

from __future__ import annotations

import ipaddress
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Placeholder values refused as tokens, so an example file cannot go to production unchanged.
PLACEHOLDER_TOKENS = frozenset(
    {"change-me", "changeme", "secret", "token", "xxx", "", "replace-with-a-long-random-token"}
)

#: Processing limit. The largest documented notification is 1,388 bytes (tests/samples); the largest a
#: WhatsApp message can produce (65,536 characters, each escaped as 6 bytes, quoted once more, plus
#: thumbnails) stays under 1 MiB. Bodies above it are stored and dead-lettered ``too_large``, not parsed.
DEFAULT_MAX_BODY_BYTES = 1024 * 1024
#: Hard cap, enforced by nginx and the ingress: bodies above it are refused (413), counted and alerted.
DEFAULT_BODY_CAP_BYTES = 16 * 1024 * 1024
#: Where nginx forwards (without the body) a webhook it refused for being over the hard cap, so the ingress
#: checks its token, logs and counts the refusal like any other; nginx exposes the path nowhere else.
OVER_CAP_PATH = "/internal/over-cap"

#: What a webhook token may hold: printable ASCII. Anything else arrives decoded as latin-1, never matching.
_HEADER_TOKEN_CHARS = frozenset(chr(code) for code in range(0x20, 0x7F))

_IPV4_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")

#: What ``greenq up`` writes while it runs (under its default data directory), read by every command.
UP_ENV_FILE = ".greenq/greenq.env"
ENV_FILES = (".env", UP_ENV_FILE)


def _split_csv(value: object) -> object:
    """Turn ``"a, b"`` into ``["a", "b"]``; JSON-looking text and lists pass through unchanged."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            import json

            return json.loads(text)
        return [part.strip() for part in text.split(",") if part.strip()]
    return value


def parse_networks(value: object) -> object:
    """Comma-separated text to a list; IPv4-mapped IPv6 entries (``::ffff:10.0.0.1``) folded to IPv4.

    The ingress folds a mapped client address to IPv4 before matching, so a mapped entry kept as IPv6
    would never match anything.
    """
    items = _split_csv(value)
    if not isinstance(items, list):
        return items
    return [_fold_mapped(item) for item in items]


def _fold_mapped(item: object) -> object:
    text = str(item).strip() if isinstance(item, str | IPNetwork) else None
    if text is None or ":" not in text:
        return item
    try:
        network = ipaddress.IPv6Network(text, strict=False)
    except ValueError:
        return item  # pydantic reports it with the field's name
    if network.prefixlen < 96 or not network.subnet_of(_IPV4_MAPPED):
        return item
    mapped = network.network_address.ipv4_mapped
    return ipaddress.IPv4Network(f"{mapped}/{network.prefixlen - 96}", strict=False)


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
        if not set(token) <= _HEADER_TOKEN_CHARS:
            raise ValueError(
                f"token {name!r} has characters an Authorization header cannot carry as sent (only "
                "printable ASCII; headers arrive as latin-1), so it could never match (value not shown)"
            )
    return {name: SecretStr(token) for name, token in pairs.items()}


class CommonSettings(BaseSettings):
    """What every greenq process needs: where Redis is and how to log."""

    model_config = SettingsConfigDict(env_prefix="GREENQ_", env_file=ENV_FILES, extra="ignore")

    #: No default: no greenq process ever falls back to a Redis it was not told about (a default address
    #: would silently be whatever happens to listen on this machine's 6379). Commands that talk to Redis
    #: refuse to start without it; ``greenq instance`` and ``validate`` do not need it.
    redis_url: str | None = Field(
        default=None,
        description="Redis URL (redis://[:password@]host:port/db, rediss:// for TLS); needed to use Redis.",
    )
    redis_socket_timeout: float = Field(default=5.0, gt=0, description="Seconds before a Redis call fails.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(default="INFO")
    dead_letter_retention_days: int = Field(
        default=30,
        ge=0,
        description="Days a dead letter is kept before `greenq dlq trim` removes it (0 = forever).",
    )

    ordering: Literal["jobs", "partitioned"] = Field(
        default="jobs",
        description="How notifications reach workers: RQ batch jobs (unordered), or per-chat ordered "
        "partition streams (README: Ordering). Ingress and workers must agree.",
    )
    partitions: int = Field(
        default=16, ge=1, le=1024, description="Partition streams in ordered mode (never change live)."
    )

    @property
    def ordered_partitions(self) -> int:
        """Partition streams to include in backlog figures (0 unless ordered mode is on)."""
        return self.partitions if self.ordering == "partitioned" else 0

    def require_redis_url(self) -> str:
        """The configured URL, or :class:`MissingRedisUrl` with what to do about it."""
        if not self.redis_url:
            raise MissingRedisUrl(
                "GREENQ_REDIS_URL is not set (a running `greenq up` writes it to "
                f"{UP_ENV_FILE} in the folder it was started from)"
            )
        return self.redis_url

    @model_validator(mode="after")
    def _redis_url_when_needed(self) -> CommonSettings:
        if self.needs_redis:
            self.require_redis_url()
        return self

    #: Processes that cannot do anything without Redis refuse to start without its URL.
    needs_redis: ClassVar[bool] = False


class MissingRedisUrl(ValueError):
    """No Redis URL was configured where one is needed."""


class IngressSettings(CommonSettings):
    """The webhook receiver."""

    model_config = SettingsConfigDict(hide_input_in_errors=True)  # errors must never echo a token
    needs_redis: ClassVar[bool] = True

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
    batch_max_delay_ms: float = Field(
        default=1.0, ge=0, description="Longest a request waits for others to share its write (group commit)."
    )
    batch_backlog_delay_ms: float = Field(
        default=20.0,
        ge=0,
        description="The same wait while the queue has a backlog (bigger jobs, fewer of them).",
    )
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
        if self.body_cap_bytes < self.max_body_bytes:
            raise ValueError("GREENQ_BODY_CAP_BYTES must be >= GREENQ_MAX_BODY_BYTES")
        return self

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

    needs_redis: ClassVar[bool] = True

    router: str = Field(
        default="greenq.workers.handlers.builtin:default_router",
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
    dedup_window_seconds: int = Field(
        default=24 * 3600,
        ge=0,
        description="How long a processed notification's identity is remembered (0 = off).",
    )
    with_scheduler: bool = Field(default=True, description="Run RQ's scheduler (needed for delayed retries).")

    _split_backoff = field_validator("retry_backoff", mode="before")(
        classmethod(lambda cls, v: _split_csv(v))
    )

    def backoff_for(self, attempt: int) -> float:
        """Delay before re-running a notification whose ``attempt``-th try failed."""
        if not self.retry_backoff:
            return 0.0
        return self.retry_backoff[min(attempt, len(self.retry_backoff)) - 1]


#: Instance names appear in logs, metric labels, job envelopes and GREENQ_TOKENS, so they stay plain.
INSTANCE_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"

#: Characters an apiTokenInstance may hold: it is a URL path segment, so nothing that changes the URL.
_TOKEN_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


class InstanceConfig(BaseModel):
    """One GREEN API instance: where its API is and how to authenticate (the token stays a secret)."""

    model_config = ConfigDict(
        frozen=True, validate_by_name=True, validate_by_alias=True, hide_input_in_errors=True, extra="forbid"
    )

    name: str = Field(pattern=INSTANCE_NAME_PATTERN, description="Label in logs, metrics and jobs.")
    api_url: str = Field(alias="apiUrl", description="apiUrl from the GREEN API console.")
    id_instance: str = Field(alias="idInstance", pattern=r"^[0-9]{1,20}$")
    api_token: SecretStr = Field(alias="apiTokenInstance")

    @model_validator(mode="before")
    @classmethod
    def _default_name(cls, value: Any) -> Any:
        """An instance without a name is called by its idInstance."""
        if isinstance(value, dict) and not value.get("name"):
            id_instance = value.get("idInstance", value.get("id_instance"))
            if id_instance is not None:
                return {**value, "name": str(id_instance)}
        return value

    @field_validator("id_instance", mode="before")
    @classmethod
    def _id_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("api_url")
    @classmethod
    def _check_api_url(cls, value: str) -> str:
        url = value.strip().rstrip("/")
        if not url.startswith(("http://", "https://")) or any(ch.isspace() for ch in url):
            raise ValueError(f"apiUrl must be an http(s) URL, got {url!r}")
        return url

    @model_validator(mode="after")
    def _check_token(self) -> InstanceConfig:
        token = self.api_token.get_secret_value()
        if token.lower() in PLACEHOLDER_TOKENS:
            raise ValueError(f"apiTokenInstance of instance {self.name!r} is empty or a placeholder")
        if not set(token) <= _TOKEN_CHARS:
            raise ValueError(
                f"apiTokenInstance of instance {self.name!r} has characters not allowed in a URL path "
                "(value not shown)"
            )
        return self


def parse_instances(value: object) -> object:
    """``name=apiUrl|idInstance|apiTokenInstance`` items (comma-separated) or a JSON list of objects.

    Error messages name the item's position, never its text, since the text holds a token.
    """
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.startswith("["):
        import json

        try:
            return json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(
                f"GREENQ_INSTANCES is not valid JSON ({error.msg} at char {error.pos})"
            ) from None
    items: list[dict[str, str]] = []
    for position, item in enumerate(filter(None, (part.strip() for part in text.split(","))), start=1):
        name, sep, rest = item.partition("=")
        parts = rest.split("|")
        if not sep or len(parts) != 3:
            raise ValueError(
                f"GREENQ_INSTANCES item {position} must be name=apiUrl|idInstance|apiTokenInstance "
                "(value not shown)"
            )
        api_url, id_instance, token = (part.strip() for part in parts)
        items.append(
            {"name": name.strip(), "apiUrl": api_url, "idInstance": id_instance, "apiTokenInstance": token}
        )
    return items


class PollerSettings(CommonSettings):
    """Pull mode (``greenq poll``) and the ``greenq instance`` commands."""

    model_config = SettingsConfigDict(hide_input_in_errors=True)

    instances: Annotated[list[InstanceConfig], NoDecode] = Field(
        min_length=1, description="GREEN API instances to poll (GREENQ_INSTANCES)."
    )
    receive_timeout: int = Field(
        default=20, ge=5, le=60, description="receiveTimeout in seconds: how long one long poll waits."
    )
    poll_request_timeout: float = Field(
        default=30.0,
        gt=0,
        description="Seconds for other calls, and added to receiveTimeout for the long poll.",
    )
    poll_backoff_base: float = Field(
        default=0.5, gt=0, description="First retry delay after a transient error."
    )
    poll_backoff_cap: float = Field(
        default=30.0, gt=0, description="Longest retry delay after transient errors."
    )
    poll_auth_backoff_base: float = Field(
        default=60.0, gt=0, description="First pause of an instance GREEN API refuses (401/403/404)."
    )
    poll_auth_backoff_cap: float = Field(
        default=900.0, gt=0, description="Longest pause of a refused instance."
    )
    poll_stop_timeout: float = Field(
        default=10.0,
        ge=0,
        description="On SIGTERM, how long to keep retrying the delete of an enqueued item.",
    )
    poller_metrics_host: str = "127.0.0.1"
    poller_metrics_port: int = Field(
        default=9101, ge=0, le=65535, description="0 disables the metrics server."
    )

    @field_validator("instances", mode="before")
    @classmethod
    def _parse_instances(cls, value: Any) -> Any:
        return parse_instances(value)

    @model_validator(mode="after")
    def _check_instances(self) -> PollerSettings:
        names = [instance.name for instance in self.instances]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"instance names must be unique, repeated: {', '.join(duplicates)}")
        if self.poll_backoff_cap < self.poll_backoff_base:
            raise ValueError("GREENQ_POLL_BACKOFF_CAP must be >= GREENQ_POLL_BACKOFF_BASE")
        if self.poll_auth_backoff_cap < self.poll_auth_backoff_base:
            raise ValueError("GREENQ_POLL_AUTH_BACKOFF_CAP must be >= GREENQ_POLL_AUTH_BACKOFF_BASE")
        return self

    def instance(self, name: str) -> InstanceConfig:
        """The configured instance called ``name`` (KeyError when there is none)."""
        for instance in self.instances:
            if instance.name == name:
                return instance
        raise KeyError(name)


#: GREEN API: a message can take up to 2 minutes to show in the journal.
JOURNAL_LAG_SECONDS = 120


class ReconcileSettings(PollerSettings):
    """``greenq reconcile``: the instances of GREENQ_INSTANCES, their journals, and the dedup window."""

    needs_redis: ClassVar[bool] = True

    reconcile_window_minutes: int = Field(
        default=30, ge=1, le=1440, description="How far back each run reads the journal (minutes=N)."
    )
    reconcile_grace_seconds: float = Field(
        default=60.0,
        ge=0,
        description="Messages younger than this are left to normal delivery (they may be in flight).",
    )
    reconcile_rate_per_second: float = Field(
        default=1.0, gt=0, description="Journal calls per second per instance (GREEN API rate-limits them)."
    )
    reconcile_max_attempts: int = Field(
        default=6, ge=1, description="Tries of one journal call (429, 5xx, timeouts) before the run fails."
    )
    reconcile_metrics_host: str = "127.0.0.1"
    reconcile_metrics_port: int = Field(
        default=9102, ge=0, le=65535, description="Metrics port of `reconcile --every` (0 = off)."
    )
    dedup_window_seconds: int = Field(
        default=24 * 3600,
        ge=0,
        description="The workers' deduplication window (the same GREENQ_DEDUP_WINDOW_SECONDS).",
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
