"""Delivering one outbox entry: at most once whenever GREEN API's records can tell.

Before each call the entry's record becomes ``sending`` (fenced by the partition lease), so a crash or an
answer lost after that point leaves the doubt visible. A ``sending`` record is never followed by a new call
until :mod:`.lookup` has found the message (then it is recorded as sent with that idMessage) or has
established it is neither queued nor journaled. Answers: an idMessage settles the entry ``sent``; 429 waits
and tries again; another 4xx dead-letters it (``greenq dlq``); 5xx, timeouts and lost connections are
retried with capped, jittered backoff until the entry is ``max_age`` old, then dead-lettered.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, replace

import orjson

from greenq.core import checkpoints
from greenq.core.backoff import Backoff
from greenq.core.greenapi.errors import ApiError, RateLimited
from greenq.core.logs import fields
from greenq.core.outbox import ENTRY_FIELD, OutboxEntry, OutboxFormatError, ReplyRecord
from greenq.core.settings import SenderSettings
from greenq.sender.api import SendingApi
from greenq.sender.ledger import ERROR_CHARS, SETTLED_STATES, Ledger
from greenq.sender.lookup import in_journal, in_queue
from greenq.sender.metrics import SenderMetrics, SendResult
from greenq.sender.pacing import Pacer

log = logging.getLogger("greenq.sender")


@dataclass(frozen=True)
class SendPolicy:
    """How hard to retry, and how to check an ambiguous call (from :class:`SenderSettings`)."""

    backoff_base: float = 1.0
    backoff_cap: float = 60.0
    max_age: float = 24 * 3600.0
    journal_lag: float = 120.0
    clock_skew: float = 30.0
    lookup_deadline: float = 3600.0

    @classmethod
    def from_settings(cls, settings: SenderSettings) -> SendPolicy:
        return cls(
            backoff_base=settings.send_backoff_base,
            backoff_cap=settings.send_backoff_cap,
            max_age=settings.send_max_age_seconds,
            journal_lag=settings.send_journal_lag_seconds,
            clock_skew=settings.send_clock_skew_seconds,
            lookup_deadline=settings.send_lookup_deadline_seconds,
        )


class Stopped(Exception):
    """The partition is being let go: the entry stays pending for whoever delivers the partition next."""


@dataclass(frozen=True)
class Delivery:
    """What delivering an entry needs: the instances' APIs (by idInstance), Redis, pacing and metrics."""

    apis: dict[str, SendingApi]
    ledger: Ledger
    pacer: Pacer
    metrics: SenderMetrics
    policy: SendPolicy

    async def deliver(
        self, partition: int, stream_id: bytes, values: dict[bytes, bytes], stop: asyncio.Event
    ) -> None:
        """Deliver one stream entry, or dead-letter it; returns early (entry left pending) on ``stop``."""
        if not values:  # deleted while pending (e.g. by hand): nothing to send
            await self.ledger.forget(partition, stream_id)
            return
        raw = values.get(ENTRY_FIELD) or orjson.dumps(
            {key.decode(errors="replace"): value.decode(errors="replace") for key, value in values.items()}
        )
        try:
            entry = read_entry(values)
        except OutboxFormatError as error:
            await self.ledger.settle_dead(partition, stream_id, raw, None, str(error))
            self.metrics.count("unknown", "unknown", "dead")
            log.error(
                "outbox entry unreadable; dead-lettered", extra=fields(partition=partition, error=str(error))
            )
            return
        api = self.apis.get(entry.instance)
        if api is None:
            reason = f"idInstance {entry.instance} is not in GREENQ_INSTANCES"
            await self.ledger.settle_dead(partition, stream_id, raw, entry, reason)
            self.metrics.count("unknown", entry.method, "dead")
            log.error("outbox entry for an unknown instance; dead-lettered", extra=fields(entry=entry.id))
            return
        try:
            await _EntryDelivery(self, _Target(partition, stream_id, raw, entry, api), stop).run()
        except Stopped:
            return


def read_entry(values: dict[bytes, bytes]) -> OutboxEntry:
    """The stream entry as an :class:`OutboxEntry`; :class:`OutboxFormatError` for anything else, including
    well-formed JSON with fields of the wrong types (which must be dead-lettered, not crash the sender)."""
    try:
        entry = OutboxEntry.decode(values)
    except OutboxFormatError:
        raise
    except Exception as error:  # e.g. a body that is a list: check_entry trips over it
        raise OutboxFormatError(f"not an outbox entry: {type(error).__name__}") from error
    typed = (
        isinstance(entry.id, str)
        and isinstance(entry.instance, str)
        and isinstance(entry.body, dict)
        and isinstance(entry.created, int | float)
        and not isinstance(entry.created, bool)
    )
    if not typed:
        raise OutboxFormatError("not an outbox entry: a field has the wrong type")
    return entry


@dataclass(frozen=True)
class _Target:
    partition: int
    stream_id: bytes
    raw: bytes
    entry: OutboxEntry
    api: SendingApi


class _EntryDelivery:
    """One entry's way to ``sent`` or ``dead``."""

    def __init__(self, delivery: Delivery, target: _Target, stop: asyncio.Event) -> None:
        self._d = delivery
        self._t = target
        self._entry = target.entry
        self._stop = stop
        self._backoff = Backoff(delivery.policy.backoff_base, delivery.policy.backoff_cap)

    async def run(self) -> None:
        record = await self._d.ledger.record(self._entry.id)
        if record.state in SETTLED_STATES:
            await self._d.ledger.forget(self._t.partition, self._t.stream_id)
            return
        current: ReplyRecord | None = record
        while current is not None:
            if current.state == "sending":
                found = await self._look(current)
                if found is not None:
                    await self._settle_sent(current, found, "found_after_ambiguous")
                    return
            if time.time() - self._entry.created > self._d.policy.max_age:
                await self._dead(f"not sent within {self._d.policy.max_age:g} s; last error: {current.error}")
                return
            current = await self._attempt(current)

    async def _attempt(self, record: ReplyRecord) -> ReplyRecord | None:
        """One call; the record to go on with, or None once the entry is settled."""
        if not await self._d.pacer.wait_for_slot(self._t.api, self._stop):
            raise Stopped
        record = await self._d.ledger.start_attempt(self._t.partition, self._entry, record)
        checkpoints.reached(checkpoints.SEND_STARTED)
        started = time.monotonic()
        try:
            id_message = await self._t.api.send(self._entry.method, self._entry.body)
        except ApiError as error:
            return await self._failed(record, error)
        checkpoints.reached(checkpoints.SEND_ANSWERED)
        self._d.metrics.latency.labels(instance=self._t.api.instance.name, method=self._entry.method).observe(
            time.monotonic() - started
        )
        await self._settle_sent(record, id_message, "sent")
        return None

    async def _failed(self, record: ReplyRecord, error: ApiError) -> ReplyRecord | None:
        if _refused(error):
            await self._dead(str(error))
            return None
        now, text = time.time(), str(error)[:ERROR_CHARS]
        result: SendResult = "retried"
        if isinstance(error, RateLimited):
            result, delay = "rate_limited", error.retry_after or self._backoff.next_delay()
            record = record.moved("queued", now, error=text)
        elif not error.maybe_sent:  # e.g. connection refused: GREEN API never saw the call
            delay, record = self._backoff.next_delay(), record.moved("queued", now, error=text)
        else:  # it may have arrived: stays ``sending``, and is looked for before any new call
            delay, record = self._backoff.next_delay(), replace(record, error=text, updated=now)
        await self._d.ledger.note(self._entry.id, record)
        self._count(result)
        log.warning("send failed; will retry", extra=fields(entry=self._entry.id, error=text, delay=delay))
        await self._pause(delay)
        return record

    async def _look(self, record: ReplyRecord) -> str | None:
        """The idMessage of the ambiguous call's message, or None once GREEN API's records show it is not
        there (or, past ``lookup_deadline``, cannot be read: the one case resent without knowing)."""
        policy = self._d.policy
        since = (record.attempt_started or self._entry.created) - policy.clock_skew
        give_up_at = time.time() + policy.lookup_deadline
        missed_at: float | None = None
        while True:
            try:
                found, missed_at = await self._search(since, missed_at)
            except ApiError as error:
                if time.time() >= give_up_at:
                    log.warning("queue and journal unreadable; resending", extra=fields(entry=self._entry.id))
                    return None
                log.warning("looking for an ambiguous send failed", extra=fields(error=str(error)))
                await self._pause(self._backoff.next_delay())
                continue
            if found is not None:
                return found
            settled_at = missed_at + policy.journal_lag
            if time.time() >= settled_at:
                return None
            await self._pause(settled_at - time.time())

    async def _search(self, since: float, missed_at: float | None) -> tuple[str | None, float]:
        """Queue first, then the journal; also when the queue was first seen without the message."""
        found = await in_queue(self._t.api, self._d.ledger, self._entry)
        missed_at = missed_at if missed_at is not None else time.time()
        if found is not None:
            return found, missed_at
        return await in_journal(self._t.api, self._d.ledger, self._entry, since), missed_at

    async def _settle_sent(self, record: ReplyRecord, id_message: str, result: SendResult) -> None:
        await self._d.ledger.settle_sent(
            self._t.partition, self._t.stream_id, self._entry, record, id_message
        )
        checkpoints.reached(checkpoints.SEND_RECORDED)
        self._count(result)
        log.info("sent", extra=fields(entry=self._entry.id, idMessage=id_message, result=result))

    async def _dead(self, reason: str) -> None:
        await self._d.ledger.settle_dead(
            self._t.partition, self._t.stream_id, self._t.raw, self._entry, reason
        )
        self._count("dead")
        log.error("outbox entry dead-lettered", extra=fields(entry=self._entry.id, reason=reason))

    async def _pause(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._stop.wait(), max(0.0, seconds))
        except TimeoutError:
            return
        raise Stopped

    def _count(self, result: SendResult) -> None:
        self._d.metrics.count(self._t.api.instance.name, self._entry.method, result)


def _refused(error: ApiError) -> bool:
    """A 4xx other than 429: GREEN API will refuse this call however often it is made."""
    return error.status is not None and 400 <= error.status < 500 and not isinstance(error, RateLimited)
