"""A real redis-server at its ``maxmemory`` limit (``noeviction``): writes refused until memory is freed."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from redis import Redis
from redis.exceptions import OutOfMemoryError, ResponseError

FILLER_PREFIX = "test:filler:"
FILLER_BYTES = 64 * 1024
#: More filler than this means the limit never took effect: fail instead of filling the machine.
MAX_FILLERS = 200


@dataclass
class FullRedis:
    """Handle of a filled Redis: ``free`` deletes the filler (DEL works at the limit)."""

    redis: Redis
    fillers: list[str] = field(default_factory=list)

    def free(self) -> None:
        if self.fillers:
            self.redis.delete(*self.fillers)
            self.fillers.clear()

    def refuses_writes(self) -> bool:
        try:
            self.redis.set("test:write-check", "1")
        except OutOfMemoryError:
            return True
        self.redis.delete("test:write-check")
        return False


def used_memory(redis: Redis) -> int:
    return int(redis.info("memory")["used_memory"])


@contextmanager
def full_redis(redis: Redis) -> Iterator[FullRedis]:
    """Make ``redis`` full: a tiny ``maxmemory`` (1 MB above what it holds) filled with data until Redis
    answers OOM, then the limit lowered below the filled level so Redis's own buffers cannot open a gap.
    Deleting the filler (``free``) puts memory back under the limit. On exit the original limit returns."""
    original = str(redis.config_get("maxmemory")["maxmemory"])
    handle = FullRedis(redis)
    try:
        redis.config_set("maxmemory", used_memory(redis) + 1024 * 1024)
        for n in range(MAX_FILLERS):
            try:
                redis.set(f"{FILLER_PREFIX}{n}", b"x" * FILLER_BYTES)
            except ResponseError:
                break
            handle.fillers.append(f"{FILLER_PREFIX}{n}")
        else:
            raise AssertionError("Redis never reached its maxmemory")
        redis.config_set("maxmemory", used_memory(redis) - 4 * FILLER_BYTES)
        assert handle.refuses_writes()
        yield handle
    finally:
        handle.free()
        redis.config_set("maxmemory", original)
