"""Random delivery schedules for the exactly-once harness, and what Redis must hold after each one.

A schedule is a handful of notifications of different kinds, each delivered once or more (a copy through
the other ingress, a later resend) while faults fire. The expectation is computed from what was *accepted*
(every 200, plus every 503 whose write the proxy let land): for each kind, the outcomes and the handler
effects it must leave, exactly.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

Kind = Literal["message", "state", "quota", "retried", "failing", "poison", "unknown"]
KINDS: tuple[Kind, ...] = ("message", "state", "quota", "retried", "failing", "poison", "unknown")

#: Handler retries the harness's workers allow: ``retried`` recovers within them, ``failing`` does not.
MAX_RETRIES = 2


@dataclass
class Planned:
    """One notification and its deliveries: (round, ingress) pairs; round 0 before the first drain."""

    key: str
    kind: Kind
    body: bytes
    deliveries: list[tuple[int, int]]
    accepted: int = 0  # copies stored: 200s plus 503s whose write landed


@dataclass
class Schedule:
    seed: int
    notifications: list[Planned] = field(default_factory=list)

    def deliveries(self, round_: int) -> list[tuple[Planned, int]]:
        found = [(n, ingress) for n in self.notifications for r, ingress in n.deliveries if r == round_]
        random.Random(self.seed * 7 + round_).shuffle(found)
        return found


def plan(
    seed: int, message_sample: dict[str, Any], state_sample: dict[str, Any], quota: dict[str, Any]
) -> Schedule:
    rng = random.Random(seed)
    schedule = Schedule(seed)
    for index in range(rng.randint(3, 7)):
        kind = rng.choice(KINDS)
        key = f"s{seed}n{index}"
        body = _body(kind, key, message_sample, state_sample, quota, index)
        deliveries = [(0, rng.randrange(2))]
        if rng.random() < 0.3:
            deliveries.append((0, 1 - deliveries[0][1]))  # a copy through the other ingress
        if rng.random() < 0.3:
            deliveries.append((1, rng.randrange(2)))  # GREEN API resends after the first drain
        schedule.notifications.append(Planned(key, kind, body, deliveries))
    return schedule


def _body(
    kind: Kind, key: str, message: dict[str, Any], state: dict[str, Any], quota: dict[str, Any], index: int
) -> bytes:
    steer: dict[str, Any] = {"key": key}
    if kind == "poison":
        return b'{"typeWebhook": "stateInstanceChanged", "x": ' + b"[" * 300 + b"]" * 300 + b"}"
    if kind == "unknown":
        return orjson.dumps({**state, "typeWebhook": "somethingNew", "test": steer})
    if kind == "state":
        return orjson.dumps({**state, "timestamp": state["timestamp"] + index, "test": steer})
    if kind == "quota":
        return orjson.dumps({**quota, "test": steer})
    if kind == "retried":
        steer["raise"] = MAX_RETRIES
    if kind == "failing":
        steer["raise"] = MAX_RETRIES + 1
    return orjson.dumps({**message, "idMessage": key.upper(), "test": steer})


def expected_outcomes(schedule: Schedule) -> Counter[str]:
    outcomes: Counter[str] = Counter()
    for n in schedule.notifications:
        if n.accepted == 0:
            continue
        if n.kind in ("message", "state", "retried", "failing"):
            outcomes["failed" if n.kind == "failing" else "handled"] += 1
            outcomes["duplicate"] += n.accepted - 1
        elif n.kind == "quota":
            outcomes["handled"] += n.accepted  # no identity: identical bodies are separate events
        else:
            outcomes["invalid" if n.kind == "poison" else "unknown_type"] += n.accepted
    return +outcomes


def expected_effects(schedule: Schedule) -> Counter[tuple[str, str]]:
    """(effect key, handler) -> how many times it must exist."""
    effects: Counter[tuple[str, str]] = Counter()
    for n in schedule.notifications:
        key = n.key.upper() if n.kind in ("message", "retried", "failing") else n.key
        once = 1 if n.accepted else 0
        if n.kind in ("message", "state", "retried"):
            effects[(key, "record")] += once
            effects[(key, "flaky")] += once
        elif n.kind == "failing":
            effects[(key, "record")] += once
        elif n.kind == "quota":
            effects[(key, "record")] += n.accepted
            effects[(key, "flaky")] += n.accepted
    return +effects
