"""How long greenq keeps what it knows about a reply (its record and statuses): shared by the sender and the
workers, which both write reply keys with this TTL."""

from __future__ import annotations

from pydantic import Field

from greenq.core.settings.common import CommonSettings


class ReplySettings(CommonSettings):
    reply_ttl_seconds: int = Field(
        default=7 * 24 * 3600,
        ge=60,
        description="How long a reply's record and its delivery statuses (ctx.reply_status) are kept.",
    )
