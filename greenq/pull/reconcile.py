"""Recovering notifications GREEN API journaled but never delivered (``greenq reconcile``).

Per instance: read both journals for the window, keep messages older than the grace period (younger ones may
still be on their way), and look each one up by its dedup identity: the marker a worker writes when it
processes the notification, or the marker an earlier run wrote when it enqueued a copy. What has neither
was never received: it is rebuilt in the notification shape (:mod:`greenq.pull.rebuild`) and enqueued with
source ``reconcile``, together with its marker in one transaction, oldest first. A late real copy, or a
second run, then finds the identity taken; the workers' deduplication treats both copies as one.

In ordered mode a recovered notification is accepted when it is enqueued: it joins its chat's partition
behind everything of that chat accepted before, and each transaction holds one partition's notifications
(with their markers).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
from redis import Redis

from greenq.core import keys
from greenq.core.contract import Envelope, ProducerQueue
from greenq.core.logs import fields
from greenq.core.notification import id_message, timestamp, type_message, type_webhook
from greenq.pull.journal import JournalReader
from greenq.pull.rebuild import InstanceInfo, Unmappable, identity_of, rebuild
from greenq.pull.reconcile_metrics import ReconcileMetrics

log = logging.getLogger("greenq.reconcile")

#: Notifications per enqueued job (and at most per Redis transaction).
BATCH = 100


@dataclass(frozen=True)
class ReconcilePolicy:
    window_minutes: int
    grace_seconds: float
    marker_seconds: int


@dataclass(frozen=True)
class ChatRequest:
    """Reconcile one chat's newest ``count`` messages (getChatHistory) instead of the journal window."""

    chat_id: str
    count: int


@dataclass
class InstanceReport:
    """What one run did for one instance."""

    instance: str
    checked: int = 0
    deferred: int = 0
    too_old: int = 0
    recovered: int = 0
    unmapped: int = 0
    error: str | None = None
    recovered_ids: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        shown = {key: value for key, value in vars(self).items() if key != "recovered_ids"}
        return {key: value for key, value in shown.items() if value is not None}


@dataclass(frozen=True)
class _Candidate:
    digest: str
    entry: dict[str, Any]


@dataclass(frozen=True)
class _Recovered:
    digest: str
    data: dict[str, Any]
    envelope: Envelope

    @classmethod
    def of(cls, instance: str, digest: str, data: dict[str, Any]) -> _Recovered:
        envelope = Envelope(body=orjson.dumps(data).decode(), source="reconcile", token_id=instance)
        return cls(digest, data, envelope)


def _envelope_of(recovered: _Recovered) -> Envelope:
    return recovered.envelope


class Reconciler:
    """Compares journals with the dedup markers and enqueues what is missing."""

    def __init__(
        self, redis: Redis, queue: ProducerQueue, metrics: ReconcileMetrics, policy: ReconcilePolicy
    ) -> None:
        self._redis = redis
        self._queue = queue
        self._metrics = metrics
        self._policy = policy

    async def run(self, reader: JournalReader, name: str, chat: ChatRequest | None = None) -> InstanceReport:
        """One pass over one instance's journals, or over one chat's history (getChatHistory); raises
        ApiError / RedisError when it cannot finish."""
        report = InstanceReport(name)
        info = await reader.instance_info()
        if chat is not None:
            entries = await reader.chat_history(chat.chat_id, chat.count)
        else:
            entries = [
                *await reader.messages("incoming", self._policy.window_minutes),
                *await reader.messages("outgoing", self._policy.window_minutes),
            ]
        candidates = self._candidates(entries, info, report)
        missing = await asyncio.to_thread(self._missing, candidates)
        notifications = self._rebuilt(missing, info, report)
        await asyncio.to_thread(self._enqueue, name, notifications)
        report.recovered = len(notifications)
        report.recovered_ids = [str(id_message(data)) for _, data in notifications]
        self._metrics.checked.labels(instance=name).inc(report.checked)
        self._metrics.recovered.labels(instance=name).inc(report.recovered)
        self._metrics.unmapped.labels(instance=name).inc(report.unmapped)
        self._metrics.last_success.labels(instance=name).set(time.time())
        return report

    def _candidates(
        self, entries: list[dict[str, Any]], info: InstanceInfo, report: InstanceReport
    ) -> list[_Candidate]:
        """Entries old enough to judge and young enough to have a dedup marker, one per identity, oldest
        first (a chat's history can reach further back than deduplication remembers)."""
        now = time.time()
        cutoff, oldest = now - self._policy.grace_seconds, now - self._policy.marker_seconds
        found: dict[str, _Candidate] = {}
        for entry in sorted(entries, key=_timestamp):
            if _timestamp(entry) > cutoff:
                report.deferred += 1
                continue
            if _timestamp(entry) < oldest:
                report.too_old += 1
                continue
            report.checked += 1
            try:
                digest = identity_of(entry, info)
            except Unmappable as error:
                self._unmapped(report, entry, error)
                continue
            found.setdefault(digest, _Candidate(digest, entry))
        return list(found.values())

    def _missing(self, candidates: list[_Candidate]) -> list[_Candidate]:
        """Candidates with neither a worker's dedup marker nor an earlier run's marker."""
        pipe = self._redis.pipeline(transaction=False)
        for candidate in candidates:
            pipe.exists(keys.dedup_key(candidate.digest), keys.reconciled_key(candidate.digest))
        found = pipe.execute()
        return [candidate for candidate, count in zip(candidates, found, strict=True) if not count]

    def _rebuilt(
        self, missing: list[_Candidate], info: InstanceInfo, report: InstanceReport
    ) -> list[tuple[str, dict[str, Any]]]:
        rebuilt = []
        for candidate in missing:
            try:
                rebuilt.append((candidate.digest, rebuild(candidate.entry, info)))
            except Unmappable as error:
                self._unmapped(report, candidate.entry, error)
        return rebuilt

    def _enqueue(self, name: str, notifications: list[tuple[str, dict[str, Any]]]) -> None:
        """Jobs of up to ``BATCH`` notifications (ordered mode: one partition's), each committed with its
        markers in one transaction."""
        for start in range(0, len(notifications), BATCH):
            chunk = [
                _Recovered.of(name, digest, data) for digest, data in notifications[start : start + BATCH]
            ]
            for group in self._queue.split(chunk, _envelope_of):
                self._commit(group)
                for recovered in group:
                    log.info(
                        "recovered a notification GREEN API did not deliver",
                        extra=fields(instance=name, **_described(recovered.data)),
                    )

    def _commit(self, group: list[_Recovered]) -> None:
        pipe = self._redis.pipeline(transaction=True)
        pipe.multi()
        enqueued = self._queue.enqueue([recovered.envelope for recovered in group], pipe)
        for recovered in group:
            pipe.set(keys.reconciled_key(recovered.digest), 1, ex=self._policy.marker_seconds)
        pipe.execute()
        self._queue.settle(enqueued)

    def _unmapped(self, report: InstanceReport, entry: dict[str, Any], error: Unmappable) -> None:
        report.unmapped += 1
        log.error(
            "journal message not delivered and not rebuildable; recover it by hand",
            extra=fields(
                instance=report.instance,
                idMessage=entry.get("idMessage"),
                typeMessage=entry.get("typeMessage"),
                message_timestamp=entry.get("timestamp"),
                reason=str(error),
            ),
        )


def _timestamp(entry: dict[str, Any]) -> float:
    value = entry.get("timestamp")
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def _described(data: dict[str, Any]) -> dict[str, Any]:
    return {
        "typeWebhook": type_webhook(data),
        "typeMessage": type_message(data),
        "idMessage": id_message(data),
        "message_timestamp": timestamp(data),
    }
