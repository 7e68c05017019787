"""Fault injection: the next N API calls of an instance fail (an HTTP status), answer late, or are dropped."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

FaultKind = Literal["fail", "delay", "drop"]


@dataclass
class FaultRule:
    """Applies to the next ``remaining`` calls of ``methods`` (all API methods when None)."""

    kind: FaultKind
    remaining: int
    status: int = 500
    seconds: float = 0.0
    methods: frozenset[str] | None = None

    def matches(self, method: str) -> bool:
        return self.remaining > 0 and (self.methods is None or method in self.methods)


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
                rule.remaining -= 1
                self.injected += 1
                self._rules = [kept for kept in self._rules if kept.remaining > 0]
                return rule
        return None
