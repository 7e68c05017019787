"""How full Redis is: ``used_memory`` against ``maxmemory`` from ``INFO memory`` (a read; works when full).

With ``maxmemory-policy noeviction`` a Redis at its limit refuses every write: the ingress answers 503
and workers wait. Status output and the worker's metrics report the same two numbers, so an alert can
fire before the limit is reached.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis import Redis


@dataclass(frozen=True)
class RedisMemory:
    """Bytes in use and the configured limit (0 = no limit)."""

    used_bytes: int
    max_bytes: int
    policy: str

    @property
    def used_ratio(self) -> float | None:
        """used / max, or None without a limit."""
        return self.used_bytes / self.max_bytes if self.max_bytes else None


def read_memory(connection: Redis) -> RedisMemory:
    info = connection.info("memory")
    return RedisMemory(
        used_bytes=int(info.get("used_memory", 0)),
        max_bytes=int(info.get("maxmemory", 0)),
        policy=str(info.get("maxmemory_policy", "")),
    )


def describe(memory: RedisMemory) -> str:
    """One human line, e.g. ``412.3 MB of 1024.0 MB (40%, noeviction)``."""
    used = f"{memory.used_bytes / 2**20:.1f} MB"
    if memory.used_ratio is None:
        return f"{used} (no maxmemory: Redis can grow until the machine runs out)"
    return f"{used} of {memory.max_bytes / 2**20:.1f} MB ({memory.used_ratio:.0%}, {memory.policy})"
