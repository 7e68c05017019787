"""Ordered mode: draining one partition stream, each chat's notifications in the order they were accepted.

A ``drain_partition`` RQ job holds the partition's lease (one drain per partition at a time) and reads
batches: first the chats whose parked head is due for its retry, then the stream (its pending entries first,
left by a drain that died mid-batch, then new ones). Each batch commits its effects, claims, outcome counts
*and* its stream acknowledgements (XACK + XDEL) and parked-list moves in one MULTI/EXEC, so committed <=>
acknowledged; a crash commits nothing and the next drain reads the same entries in the same order. A
commit attempt that is refused or whose reply is lost is followed by one that reads the batch again, so
every attempt decides from the partition as it is (``PartitionDrain._read``).

A handler failure with retries left parks the notification at the head of its chat's parked list and marks
the chat held until its backoff ends; every later notification of that chat is appended behind it, so no
message overtakes it, while the partition's other chats go on. After the last retry the notification is
dead-lettered (``failed``) and its chat moves on.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import partial
from typing import Final, cast

from redis import Redis
from redis.client import Pipeline
from redis.exceptions import ResponseError

from greenq.core import keys, partitions
from greenq.core.contract import ENVELOPE_FIELD, NotificationQueue, decode_wire
from greenq.workers.claims import Claimed
from greenq.workers.commit import Decide
from greenq.workers.drain_sweep import DrainScheduler
from greenq.workers.metrics import WorkerMetrics
from greenq.workers.processing import OrderedBatch, Processor
from greenq.workers.results import Decision, Deferred, Read, Retry, Valid, Writes, own_write

#: Notifications per batch (one commit) and seconds one drain job runs before yielding to other jobs.
BATCH: Final = 256
BUDGET_SECONDS: Final = 2.0
#: Seconds a drain's lease lives without renewal (a killed drain's partition is free again after it).
LEASE_SECONDS: Final = 30

_UNLOCK = "if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end"

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
redis.call('DEL', KEYS[2])
return redis.call('XLEN', KEYS[3])
"""


@dataclass
class _Round:
    """One commit attempt's bookkeeping: which chats were held when it read its batch, and how many entries
    each parked list it read holds (a chat is released only once all of them are popped)."""

    partition: int
    held: dict[str, float]
    now: float
    emptied: dict[str, int] = field(default_factory=dict)  # chat -> parked entries left to pop


class PartitionDrain:
    """Drains partitions through a :class:`Processor`, keeping per-chat order."""

    def __init__(
        self,
        processor: Processor,
        redis: Redis,
        partition_count: int,
        metrics: WorkerMetrics | None = None,
    ) -> None:
        self._partitions = partition_count
        self._processor = processor
        self._redis = redis
        self._queue = NotificationQueue(redis)
        self._release_script = redis.register_script(_RELEASE)
        self._scheduler = DrainScheduler(redis, partition_count, metrics)

    def drain(self, partition: int, lease_id: str) -> int:
        """Drain for at most :data:`BUDGET_SECONDS`; returns how many notifications committed."""
        if not self._acquire(partition, lease_id):
            return 0
        self._clear_due_retry(partition)
        self._ensure_group(partition)
        done, deadline = 0, time.monotonic() + BUDGET_SECONDS
        try:
            while time.monotonic() < deadline:
                progressed = self._round(partition)
                if not progressed:
                    break
                done += progressed
                self._redis.set(keys.partition_lease_key(partition), lease_id, ex=LEASE_SECONDS)
        except BaseException:
            # RQ re-runs this job (its Retry); the scheduled flag stays, so nobody queues a second drain.
            self._redis.eval(_UNLOCK, 1, keys.partition_lease_key(partition), lease_id)
            raise
        self._release(partition, lease_id)
        return done

    def sweep(self) -> list[int]:
        """Queue a drain for every partition with entries (or due held chats) and none queued; every worker
        runs it in its maintenance pass, whatever its own ``GREENQ_ORDERING`` (:mod:`workers.drain_sweep`).
        Returns the partitions scheduled."""
        return self._scheduler.sweep()

    def _clear_due_retry(self, partition: int) -> None:
        """A run that starts once a held chat's retry is due serves it: the delayed drain's flag goes, so
        this run's release can queue the next one."""
        held = self._hgetall(keys.partition_held_key(partition))
        if held and min(float(value) for value in held.values()) <= time.time():
            self._redis.delete(keys.partition_retry_key(partition))

    def _acquire(self, partition: int, lease_id: str) -> bool:
        key = keys.partition_lease_key(partition)
        return bool(self._redis.set(key, lease_id, nx=True, ex=LEASE_SECONDS))

    def _ensure_group(self, partition: int) -> None:
        try:
            self._redis.xgroup_create(
                keys.partition_stream_key(partition), keys.DRAIN_GROUP, "0", mkstream=True
            )
        except ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise

    def _release(self, partition: int, lease_id: str) -> None:
        """Give the partition up; queue the next drain if entries or held chats remain."""
        keys_ = [
            keys.partition_lease_key(partition),
            keys.partition_scheduled_key(partition),
            keys.partition_stream_key(partition),
        ]
        backlog = int(cast(int, self._release_script(keys=keys_, args=[lease_id])))
        held = {k.decode(): float(v) for k, v in self._hgetall(keys.partition_held_key(partition)).items()}
        if not backlog and not held:
            return
        if backlog:
            self._scheduler.schedule(partition)
            return
        # Only held chats left: a drain delayed to the earliest retry, flagged by its own key. The scheduled
        # flag stays clear, so a notification of another chat arriving meanwhile gets a drain at once
        # instead of waiting behind the held chat's backoff.
        delay = max(0.0, min(held.values()) - time.time())
        retry = keys.partition_retry_key(partition)
        if self._redis.set(retry, 1, nx=True, ex=partitions.SCHEDULED_TTL_SECONDS + int(delay)):
            self._queue.enqueue_drain(partition, delay=delay)

    def _hgetall(self, key: str) -> dict[bytes, bytes]:
        return cast(dict[bytes, bytes], self._redis.hgetall(key))

    def _round(self, partition: int) -> int:
        """One batch; returns how many stream or parked entries it settled (0: nothing to do now)."""
        return len(self._processor.commit_ordered(partial(self._read, partition)))

    def _read(self, partition: int, pipe: Pipeline) -> OrderedBatch:
        """One commit attempt's batch, read afresh: a retried attempt sees what the last one applied (its
        reply lost) or left (refused). The held hash and the held chats' parked lists are WATCHed before
        they are read: an earlier attempt's EXEC landing late, after these reads, changes one of them or a
        claim of this batch, and so refuses this attempt instead of being decided over."""
        state = _Round(partition, _watched_held(pipe, partition), time.time())
        wires: list[object] = []
        origins: list[str] = []
        for chat, not_before in state.held.items():
            if not_before <= state.now and len(wires) < BATCH:
                self._read_parked(pipe, state, chat, wires, origins)
        self._read_stream(pipe, state, wires, origins)
        ordering = _Ordering(state)
        return OrderedBatch(wires, origins, ordering.decide, ordering.acknowledgements)

    def _read_parked(
        self, pipe: Pipeline, state: _Round, chat: str, wires: list[object], origins: list[str]
    ) -> None:
        key = keys.partition_parked_key(state.partition, chat)
        entries = cast(list[bytes], pipe.lrange(key, 0, BATCH - len(wires) - 1))
        state.emptied[chat] = pipe.llen(key)
        for raw in entries:
            wires.append(decode_wire(raw))
            origins.append(f"parked|{chat}")

    def _read_stream(self, pipe: Pipeline, state: _Round, wires: list[object], origins: list[str]) -> None:
        stream = keys.partition_stream_key(state.partition)
        for start in ("0", ">"):
            room = BATCH - len(wires)
            if room <= 0:
                return
            reply = pipe.xreadgroup(keys.DRAIN_GROUP, keys.DRAIN_CONSUMER, {stream: start}, count=room)
            for _, entries in cast(list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes]]]]], reply):
                for entry_id, values in entries:
                    wires.append(decode_wire(values.get(ENVELOPE_FIELD, b"null")))
                    origins.append(f"stream|{entry_id.decode()}")
            if wires and start == "0" and len(wires) >= BATCH:
                return


class _Ordering:
    """The per-notification decision of one commit attempt in ordered mode (called in the batch's order;
    a new one, over a fresh read, for every attempt).

    Each read's origin says where it came from: ``stream|<entry id>`` or ``parked|<chat>``.
    """

    def __init__(self, state: _Round) -> None:
        self._state = state
        self._blocked: set[str] = set()
        self._popped: dict[str, int] = {}
        self._acked: list[str] = []  # stream entries this attempt settles, acknowledged all at once

    def decide(self, read: Read, claimed: Claimed, decide: Decide) -> Decision:
        kind, ref = read.origin.split("|", 1)
        chat = _chat_of(read)
        if chat in self._blocked or (kind == "stream" and self._still_held(chat)):
            if kind == "stream":  # behind a held head: appended to the chat's parked list, acknowledged
                self._acked.append(ref)
                return Deferred(writes=(own_write("RPUSH", self._parked(chat), read.envelope.encode()),))
            return Deferred()  # a parked entry behind a failed one stays where it is
        decision = decide(read, claimed)
        if isinstance(decision, Retry):
            return decision.plus(self._park_head(decision, kind, ref, chat))
        if kind == "stream":
            self._acked.append(ref)
            return decision
        return decision.plus(self._pop(chat))

    def _still_held(self, chat: str) -> bool:
        state = self._state
        if chat not in state.held:
            return False
        left = state.emptied.get(chat)
        return left is None or self._popped.get(chat, 0) < left

    def _parked(self, chat: str) -> str:
        return keys.partition_parked_key(self._state.partition, chat)

    def acknowledgements(self) -> Writes:
        """One XACK and one XDEL for every stream entry the batch settled, queued after every decision's
        writes in the same MULTI (a pair per entry cost ~9 µs of client CPU per notification)."""
        if not self._acked:
            return ()
        stream = keys.partition_stream_key(self._state.partition)
        return own_write("XACK", stream, keys.DRAIN_GROUP, *self._acked), own_write(
            "XDEL", stream, *self._acked
        )

    def _pop(self, chat: str) -> Writes:
        self._popped[chat] = self._popped.get(chat, 0) + 1
        if self._popped[chat] >= self._state.emptied.get(chat, 0):
            held = keys.partition_held_key(self._state.partition)
            return own_write("LPOP", self._parked(chat)), own_write("HDEL", held, chat)
        return (own_write("LPOP", self._parked(chat)),)

    def _park_head(self, retry: Retry, kind: str, ref: str, chat: str) -> Writes:
        wire = retry.next_attempt.encode()
        if kind == "stream":
            self._acked.append(ref)
            parked: Writes = (own_write("RPUSH", self._parked(chat), wire),)
        else:
            parked = (own_write("LSET", self._parked(chat), 0, wire),)
        not_before = self._state.now + retry.retry_in
        self._blocked.add(chat)
        held = keys.partition_held_key(self._state.partition)
        return (*parked, own_write("HSET", held, chat, repr(not_before)))


def _watched_held(pipe: Pipeline, partition: int) -> dict[str, float]:
    """The partition's held chats (chat -> retry not before), their hash and parked lists WATCHed first."""
    held_key = keys.partition_held_key(partition)
    pipe.watch(held_key)  # type: ignore[no-untyped-call]
    raw = cast(dict[bytes, bytes], pipe.hgetall(held_key))
    held = {chat.decode(): float(not_before) for chat, not_before in raw.items()}
    parked = [keys.partition_parked_key(partition, chat) for chat in held]
    if parked:
        pipe.watch(*parked)  # type: ignore[no-untyped-call]
    return held


def _chat_of(read: Read) -> str:
    if isinstance(read, Valid):
        return read.chat
    if read.verdict is not None and isinstance(read.data, dict):
        return partitions.chat_key(read.data)
    if read.envelope.over_limit is not None:
        return ""
    return partitions.chat_key_of_body(read.envelope.raw_body)
