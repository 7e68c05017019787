"""What every greenq process reads: where Redis is, how to log, how notifications are ordered.

Env files, weakest first: ``.env`` in the working directory, then ``.greenq/greenq.env``, which a running
``greenq up`` writes there so that ``greenq status`` / ``greenq dlq`` in a second terminal find its Redis.
Real environment variables beat both.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field, NonNegativeInt, PositiveFloat, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

#: What ``greenq up`` writes while it runs (under its default data directory), read by every command.
UP_ENV_FILE = ".greenq/greenq.env"
ENV_FILES = (".env", UP_ENV_FILE)

#: A TCP port; 0 lets the OS choose (or, for a metrics port, turns the server off).
Port = Annotated[int, Field(ge=0, le=65535)]


class MissingRedisUrl(ValueError):
    """No Redis URL was configured where one is needed."""


class CommonSettings(BaseSettings):
    """What every greenq process needs: where Redis is and how to log."""

    model_config = SettingsConfigDict(env_prefix="GREENQ_", env_file=ENV_FILES, extra="ignore")

    #: Processes that cannot do anything without Redis refuse to start without its URL.
    needs_redis: ClassVar[bool] = False

    #: No default: no greenq process ever falls back to a Redis it was not told about (a default address
    #: would silently be whatever happens to listen on this machine's 6379). Commands that talk to Redis
    #: refuse to start without it; ``greenq instance`` and ``validate`` do not need it.
    redis_url: str | None = Field(
        default=None,
        description="Redis URL (redis://[:password@]host:port/db, rediss:// for TLS); needed to use Redis.",
    )
    redis_socket_timeout: PositiveFloat = Field(default=5.0, description="Seconds before a Redis call fails.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(default="INFO")
    dead_letter_retention_days: NonNegativeInt = Field(
        default=30,
        description="Days a dead letter is kept before `greenq dlq trim` removes it (0 = forever).",
    )

    ordering: Literal["jobs", "partitioned"] = Field(
        default="partitioned",
        description="How producers hand notifications to workers: per-chat ordered partition streams "
        "(default), or `jobs`, unordered RQ batch jobs (README: Ordering). Workers process both kinds "
        "whatever this says; order holds once every producer writes partitions.",
    )
    partitions: int = Field(
        default=16,
        ge=1,
        le=1024,
        description="Partition streams (never change live). Workers, backlog figures and `greenq status` "
        "use them in either mode: a producer may still write partitions during a switch.",
    )

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
