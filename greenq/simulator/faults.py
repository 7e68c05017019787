"""Fault injection: the next N API calls of an instance fail (an HTTP status), answer late, are dropped before
they are processed (``drop``) or after (``lose_reply``: the call takes effect, its answer never arrives);
or N notifications are lost before delivery (logged in the journal, never queued: GREEN API's known failure).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

FaultKind = Literal["fail", "delay", "drop", "lose_reply", "lose"]

#: The pseudo-method a ``lose`` fault applies to: a notification about to be queued for delivery.
DELIVERY: Final = "delivery"


@dataclass
class FaultRule:
    """Applies to the next ``remaining`` calls of ``methods`` (all API methods when None); ``every`` > 1 skips
    calls in between (a ``lose`` fault with ``every=33`` loses one notification in 33)."""

    kind: FaultKind
    remaining: int
    status: int = 500
    seconds: float = 0.0
    methods: frozenset[str] | None = None
    every: int = 1
    passed: int = 0

    def matches(self, method: str) -> bool:
        if self.remaining <= 0 or (self.kind == "lose") != (method == DELIVERY):
            return False
        return self.methods is None or method in self.methods

    def hits(self) -> bool:
        """Count one matching call; True when this one is hit (every ``every``-th)."""
        self.passed += 1
        return self.passed % max(1, self.every) == 0


class Faults:
    """An instance's pending faults; each call consumes at most one, oldest first."""

    def __init__(self) -> None:
        self._rules: list[FaultRule] = []
        self.injected = 0

    def add(self, rule: FaultRule) -> None:
        self._rules.append(rule)

    def clear(self) -> None:
        self._rules.clear()

    @property
    def pending(self) -> int:
        """Calls still to be hit by a fault."""
        return sum(rule.remaining for rule in self._rules)

    def take(self, method: str) -> FaultRule | None:
        """The fault for this call of ``method``, if any (consumed)."""
        for rule in self._rules:
            if rule.matches(method):
                if not rule.hits():
                    return None
                rule.remaining -= 1
                self.injected += 1
                self._rules = [kept for kept in self._rules if kept.remaining > 0]
                return rule
        return None
