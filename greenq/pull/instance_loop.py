"""One instance's pull loop: receiveNotification, enqueue, deleteNotification, in that order, until stopped.

A notification is deleted only after Redis acknowledged its job, so a crash at any point loses nothing: an
undeleted notification is received again (the workers' deduplication drops the copy). A stop request ends
a waiting long poll at once, but a notification already received still gets its enqueue and delete.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from redis.exceptions import RedisError

from greenq.core.backoff import Backoff
from greenq.core.greenapi.errors import ApiError, AuthRefused, RateLimited
from greenq.core.greenapi.process import stopped_within
from greenq.core.logs import fields
from greenq.core.settings import PollerSettings
from greenq.pull.api import GreenApiClient, Received
from greenq.pull.metrics import PollerMetrics
from greenq.pull.sink import NotificationSink

log = logging.getLogger("greenq.poller")


@dataclass(frozen=True)
class PollPolicy:
    """Timing of one instance's loop, taken from the settings."""

    receive_timeout: int
    backoff_base: float
    backoff_cap: float
    auth_backoff_base: float
    auth_backoff_cap: float
    stop_timeout: float

    @classmethod
    def from_settings(cls, settings: PollerSettings) -> PollPolicy:
        return cls(
            receive_timeout=settings.receive_timeout,
            backoff_base=settings.poll_backoff_base,
            backoff_cap=settings.poll_backoff_cap,
            auth_backoff_base=settings.poll_auth_backoff_base,
            auth_backoff_cap=settings.poll_auth_backoff_cap,
            stop_timeout=settings.poll_stop_timeout,
        )


class InstancePoller:
    """Moves one instance's notifications from GREEN API's queue to ours, one at a time, in order."""

    def __init__(
        self,
        api: GreenApiClient,
        sink: NotificationSink,
        metrics: PollerMetrics,
        policy: PollPolicy,
        stopping: asyncio.Event,
    ) -> None:
        self._api = api
        self._name = api.instance.name
        self._sink = sink
        self._metrics = metrics
        self._policy = policy
        self._stopping = stopping
        self._backoff = Backoff(policy.backoff_base, policy.backoff_cap)
        self._auth_backoff = Backoff(policy.auth_backoff_base, policy.auth_backoff_cap)
        self._paused = False

    async def run(self) -> None:
        """Poll until ``stopping`` is set; the notification in hand is finished first."""
        instance = self._api.instance
        log.info(
            "polling instance",
            extra=fields(
                instance=self._name,
                api_url=instance.api_url,
                idInstance=instance.id_instance,
                receive_timeout=self._policy.receive_timeout,
            ),
        )
        while not self._stopping.is_set():
            received = await self._receive()
            if received is not None and await self._enqueue(received):
                await self._delete(received)
        log.info("stopped polling instance", extra=fields(instance=self._name))

    async def _receive(self) -> Received | None:
        """The next notification; None when there was none, the call failed (after a pause) or we stop."""
        started = time.perf_counter()
        call = asyncio.ensure_future(self._api.receive(self._policy.receive_timeout))
        stop = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait({call, stop}, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:
            call.cancel()
            raise
        finally:
            stop.cancel()
        if not call.done():
            # Stopping. Whatever this call would have brought is not deleted, so GREEN API delivers it again.
            call.cancel()
            await asyncio.wait({call})
            if not call.cancelled():
                call.exception()  # mark an answer that raced the cancel as seen; it is dropped
            return None
        try:
            received = call.result()
        except ApiError as error:
            await self._failed(error)
            return None
        self._succeeded()
        self._metrics.poll_latency.labels(instance=self._name).observe(time.perf_counter() - started)
        if received is not None:
            self._metrics.received.labels(instance=self._name).inc()
        return received

    async def _enqueue(self, received: Received) -> bool:
        """True once Redis holds the notification; False if we stop first (GREEN API keeps it)."""
        while True:
            try:
                enqueued_as = await self._sink.enqueue(self._name, received)
            except RedisError as error:
                self._metrics.error(self._name, "enqueue")
                if self._stopping.is_set():
                    log.warning(
                        "stopping before Redis took the notification; GREEN API keeps it for the next run",
                        extra=fields(instance=self._name, receipt_id=received.receipt_id),
                    )
                    return False
                delay = self._backoff.next_delay()
                log.warning(
                    "enqueue failed; notification not deleted, retrying",
                    extra=fields(
                        instance=self._name,
                        kind="enqueue",
                        receipt_id=received.receipt_id,
                        error=f"{type(error).__name__}: {error}",
                        retry_in_seconds=round(delay, 3),
                    ),
                )
                await self._sleep(delay)
                continue
            self._backoff.reset()
            log.debug(
                "notification enqueued",
                extra=fields(instance=self._name, receipt_id=received.receipt_id, enqueued_as=enqueued_as),
            )
            return True

    async def _delete(self, received: Received) -> None:
        """Delete an enqueued notification; on stop, keep trying only until the stop timeout."""
        deadline: float | None = None
        while True:
            try:
                removed = await self._api.delete(received.receipt_id)
            except ApiError as error:
                if self._stopping.is_set():
                    deadline = deadline or time.monotonic() + self._policy.stop_timeout
                    if time.monotonic() >= deadline:
                        log.error(
                            "gave up deleting an enqueued notification at stop; GREEN API will deliver it "
                            "again and the workers' deduplication drops the copy",
                            extra=fields(instance=self._name, receipt_id=received.receipt_id),
                        )
                        return
                await self._failed(error, deadline)
                continue
            self._succeeded()
            self._metrics.deleted.labels(instance=self._name).inc()
            if not removed:
                log.warning(
                    "deleteNotification did not know the receipt (an earlier try deleted it?)",
                    extra=fields(instance=self._name, receipt_id=received.receipt_id),
                )
            return

    async def _failed(self, error: ApiError, deadline: float | None = None) -> None:
        """Count, log and wait out a failed call: the instance pauses longer when GREEN API refuses it."""
        self._metrics.error(self._name, error.kind)
        described = {"instance": self._name, "kind": error.kind, "status": error.status, "error": str(error)}
        if isinstance(error, AuthRefused):
            delay = self._auth_backoff.next_delay()
            self._paused = True
            self._metrics.paused.labels(instance=self._name).set(1)
            log.error(
                f"GREEN API refused instance {self._name!r}: check its idInstance, apiTokenInstance and "
                "apiUrl; the instance is paused, other instances go on",
                extra=fields(**described, retry_in_seconds=round(delay, 3)),
            )
        else:
            delay = self._backoff.next_delay()
            if isinstance(error, RateLimited) and error.retry_after is not None:
                delay = max(delay, error.retry_after)
            log.warning(
                "GREEN API call failed; retrying",
                extra=fields(**described, failures=self._backoff.failures, retry_in_seconds=round(delay, 3)),
            )
        if deadline is None:
            await self._sleep(delay)
        else:
            await asyncio.sleep(min(delay, max(0.0, deadline - time.monotonic())))

    def _succeeded(self) -> None:
        self._backoff.reset()
        self._auth_backoff.reset()
        if self._paused:
            self._paused = False
            self._metrics.paused.labels(instance=self._name).set(0)
            log.info("GREEN API accepts the instance again; resuming", extra=fields(instance=self._name))

    async def _sleep(self, seconds: float) -> None:
        """Wait ``seconds``, or less if a stop is requested meanwhile."""
        await stopped_within(self._stopping, seconds)
