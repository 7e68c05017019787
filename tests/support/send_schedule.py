"""Random schedules for the outbox sender under faults: which entries the workers put (chats on two simulator
instances, spread over the partitions, in two batches), which calls of the simulator fail and how, which
Redis replies the proxy loses, and where the sender is SIGKILLed. A seed determines its schedule entirely.

Simulator faults come in two groups per instance, each consumed in order by the simulator (one rule at a
time): the send methods', and the lookup methods' (showMessagesQueue, lastOutgoingMessages). A send fault
hits the ``every``-th send call after the previous one fired; the send group's ``every`` values add up to at
most the instance's entries, and every entry is called at least once, so every send fault fires. A lookup
fault fires only if the sender looks that often; the simulator's count of pending faults says how many did.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from greenq.core import checkpoints, keys
from greenq.core.outbox import OutboxEntry
from greenq.simulator.faults import FaultKind
from tests.support.redis_proxy import Action, Command
from tests.support.simulator import INSTANCE, OTHER_INSTANCE

LOOKUP_METHODS: Final = ("showMessagesQueue", "lastOutgoingMessages")
CRASH_POINTS: Final = (checkpoints.SEND_STARTED, checkpoints.SEND_ANSWERED, checkpoints.SEND_RECORDED)
#: A send call's request timeout in these schedules, and how much longer a ``delay`` fault holds a call:
#: the call times out, and the simulator processes it at most MAX_OVERRUN later (well inside the sender's
#: journal lag, so the sender's check can see it; see docs/sender-design.md).
REQUEST_TIMEOUT: Final = 1.0
MAX_OVERRUN: Final = 0.5

Group = Literal["send", "lookup"]
#: Statuses GREEN API answers a call it will never accept with (4xx other than 429): the entry is dead.
REFUSALS: Final = frozenset({400})


@dataclass(frozen=True)
class SimFault:
    """One fault rule on one instance: hits the ``every``-th call of its group after the previous rule."""

    instance: int
    group: Group
    kind: FaultKind
    status: int = 500
    seconds: float = 0.0
    every: int = 1

    @property
    def label(self) -> str:
        what = f"fail-{self.status}" if self.kind == "fail" else self.kind
        return f"sim-{self.group}:{what}"


@dataclass(frozen=True)
class RedisFault:
    """The ``nth`` command of ``target``: reply lost (``drop``: Redis ran it), or never sent on (``cut``)."""

    target: str
    action: Action
    nth: int

    @property
    def label(self) -> str:
        return f"redis-{self.target}:{'reply-lost' if self.action == 'drop' else 'cut'}"


@dataclass(frozen=True)
class Put:
    entry: OutboxEntry
    partition: int


@dataclass
class SendSchedule:
    seed: int
    puts: list[Put]
    first_batch: int  # puts[:first_batch] before the sender starts, the rest once it has sent one
    sim_faults: list[SimFault] = field(default_factory=list)
    redis_faults: list[RedisFault] = field(default_factory=list)
    crash: tuple[str, int] | None = None
    replicas: int = 1  # senders running at once (they split the partitions; one may be the crash's)

    def refused(self, instance: int) -> int:
        """Entries of ``instance`` a schedule refuses with a 4xx (each one dead-letters one entry)."""
        return sum(
            1
            for f in self.sim_faults
            if f.instance == instance and f.group == "send" and f.kind == "fail" and f.status in REFUSALS
        )

    def summary(self) -> str:
        """The schedule in a few lines, for failure messages."""
        entries = ", ".join(
            f"{p.entry.id}@{p.entry.instance[-1]}/{p.entry.chat[-7:-5]}/p{p.partition}" for p in self.puts
        )
        sim = ", ".join(f"{f.label}@{str(f.instance)[-1]}#{f.every}" for f in self.sim_faults)
        redis = ", ".join(f"{f.label}#{f.nth}" for f in self.redis_faults)
        batch = f"first batch {self.first_batch}"
        crash = f"crash {self.crash}, {self.replicas} replica(s)"
        return f"entries [{entries}] {batch}; sim [{sim}]; redis [{redis}]; {crash}"


def _reply_key(command: Command, position: int) -> bool:
    return len(command) > position and command[position].startswith(keys.REPLY_PREFIX.encode())


#: Which commands a Redis fault can hit, by target: the command name and how to recognise it.
REDIS_TARGETS: Final[dict[str, tuple[str, Callable[[Command], bool]]]] = {
    "settle-exec": ("EXEC", lambda c: True),  # sent, dead or acknowledged: one MULTI/EXEC
    "sending-write": ("EVALSHA", lambda c: _reply_key(c, 4)),  # the fenced `sending` record
    "pacing-slot": ("EVALSHA", lambda c: len(c) > 3 and c[3].startswith(keys.SEND_NEXT_PREFIX.encode())),
    "record-read": ("GET", lambda c: _reply_key(c, 1)),
    "read-stream": ("XREADGROUP", lambda c: True),
}


def plan(seed: int) -> SendSchedule:
    rng = random.Random(seed)
    puts = _puts(rng, seed)
    schedule = SendSchedule(seed, puts, first_batch=rng.randint(1, len(puts)))
    for instance in (INSTANCE, OTHER_INSTANCE):
        calls = sum(1 for put in puts if put.entry.instance == str(instance))
        schedule.sim_faults += _send_faults(rng, instance, calls) + _lookup_faults(rng, instance)
    for _ in range(rng.choice((0, 1, 1, 2))):
        target = rng.choice(sorted(REDIS_TARGETS))
        schedule.redis_faults.append(RedisFault(target, rng.choice(("drop", "cut")), rng.randint(1, 4)))
    if rng.random() < 0.5:
        schedule.crash = (rng.choice(CRASH_POINTS), rng.randint(1, 4))
    schedule.replicas = 2 if rng.random() < 0.3 else 1
    return schedule


def _puts(rng: random.Random, seed: int) -> list[Put]:
    """2-4 chats, each on one instance and one partition; 8-14 entries among them, in stream order."""
    chats = [
        (f"7900{seed:04d}{n:03d}@c.us", rng.choice((INSTANCE, OTHER_INSTANCE)), rng.randrange(4))
        for n in range(rng.randint(2, 4))
    ]
    puts = []
    for n in range(rng.randint(8, 14)):
        chat, instance, partition = rng.choice(chats)
        method, body = _content(rng, f"s{seed}e{n}", n)
        entry = OutboxEntry(
            id=f"s{seed}e{n}",
            instance=str(instance),
            method=method,
            body={"chatId": chat, **body},
            created=time.time(),
            handler="tests",
        )
        puts.append(Put(entry, partition))
    return puts


def _content(rng: random.Random, tag: str, n: int) -> tuple[str, dict[str, Any]]:
    """A body unique to this entry in what the sender's check compares (text, file name, place, number)."""
    kind = rng.choices(("text", "file", "location", "contact"), weights=(7, 1, 1, 1))[0]
    if kind == "file":
        return "sendFileByUrl", {"urlFile": f"https://example.com/{tag}.pdf", "fileName": f"{tag}.pdf"}
    if kind == "location":
        return "sendLocation", {
            "latitude": 50 + n / 1000,
            "longitude": 30 + rng.random(),
            "nameLocation": tag,
        }
    if kind == "contact":
        return "sendContact", {"contact": {"phoneContact": 79_000_000_000 + rng.randrange(10**9)}}
    return "sendMessage", {"message": f"text {tag}"}


SEND_KINDS: Final[list[tuple[FaultKind, int]]] = [
    ("lose_reply", 500),
    ("drop", 500),
    ("fail", 500),
    ("fail", 502),
    ("fail", 429),
    ("delay", 500),
]


def _send_faults(rng: random.Random, instance: int, calls: int) -> list[SimFault]:
    wanted = [rng.choice(SEND_KINDS) for _ in range(rng.randint(0, 4))]
    if rng.random() < 0.25:
        wanted.insert(rng.randint(0, len(wanted)), ("fail", 400))
    faults, budget = [], calls
    for kind, status in wanted:
        every = rng.randint(1, 3)
        if every > budget:
            break
        budget -= every
        faults.append(SimFault(instance, "send", kind, status, _overrun(rng, kind), every))
    return faults


def _lookup_faults(rng: random.Random, instance: int) -> list[SimFault]:
    kinds: list[tuple[FaultKind, int]] = [*SEND_KINDS, ("fail", 400)]
    return [
        SimFault(instance, "lookup", kind, status, _overrun(rng, kind), rng.randint(1, 2))
        for kind, status in (rng.choice(kinds) for _ in range(rng.randint(0, 2)))
    ]


def _overrun(rng: random.Random, kind: FaultKind) -> float:
    return REQUEST_TIMEOUT + rng.uniform(0.1, MAX_OVERRUN) if kind == "delay" else 0.0
