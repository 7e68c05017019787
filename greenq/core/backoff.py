"""Capped exponential backoff with jitter, so many pollers and senders do not retry in lockstep."""

from __future__ import annotations

import random
from collections.abc import Callable

_SYSTEM_RANDOM = random.SystemRandom()


class Backoff:
    """Delays ``base, 2*base, 4*base ...`` up to ``cap``, each drawn from the upper half of its step."""

    def __init__(self, base: float, cap: float, rng: Callable[[], float] = _SYSTEM_RANDOM.random) -> None:
        self._base = base
        self._cap = cap
        self._rng = rng
        self._failures = 0

    @property
    def failures(self) -> int:
        """Consecutive failures since the last :meth:`reset`."""
        return self._failures

    def next_delay(self) -> float:
        """Record a failure and return how long to wait before the next try."""
        self._failures += 1
        ceiling = min(self._cap, self._base * 2.0 ** min(self._failures - 1, 32))
        return ceiling / 2 + self._rng() * ceiling / 2

    def reset(self) -> None:
        """A success: the next failure starts again at ``base``."""
        self._failures = 0
