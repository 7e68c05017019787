"""Durable group commit: concurrent webhook requests are written to Redis together.

Each request hands its envelope to the committer and waits. One flusher takes everything pending (up to
``max_batch``, lingering at most ``max_delay`` for more), writes it as ONE RQ job in one round trip, and
only then releases the waiting requests: each 200 still means "in Redis". While a write is in flight the
next batch gathers, so batches grow with load. When the queue already holds a backlog (workers are
behind, so a notification would wait anyway) the flusher lingers longer (``backlog_delay``): fewer, larger
jobs cut RQ's fixed per-job cost exactly when the workers need it. One flusher per process
keeps the enqueue order equal to the arrival order. The write is asynchronous: nothing blocks the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence

from greenq.core.contract import Envelope
from greenq.ingress.enqueue import Stored
from greenq.ingress.errors import IngressRefusal, Unavailable

log = logging.getLogger("greenq.ingress")

WriteBatch = Callable[[Sequence[Envelope]], Awaitable[Stored]]


class GroupCommitter:
    """Batches envelopes from concurrent requests into single durable writes."""

    def __init__(
        self, write: WriteBatch, max_batch: int = 256, max_delay: float = 0.001, backlog_delay: float = 0.0
    ) -> None:
        self._write = write
        self._max_batch = max_batch
        self._max_delay = max_delay
        self._backlog_delay = max(backlog_delay, max_delay)
        self._delay = max_delay
        self._pending: list[tuple[Envelope, asyncio.Future[str]]] = []
        self._has_work = asyncio.Event()
        self._is_full = asyncio.Event()
        self._flusher: asyncio.Task[None] | None = None
        self._closing = False

    async def start(self) -> None:
        self._flusher = asyncio.create_task(self._run(), name="greenq-group-commit")

    async def stop(self) -> None:
        """Write what is pending, then stop; later submissions get 503."""
        self._closing = True
        self._has_work.set()
        if self._flusher is not None:
            await self._flusher

    async def submit(self, envelope: Envelope) -> str:
        """The RQ job id once the envelope is durably in Redis; raises :class:`Unavailable` otherwise."""
        if self._closing or self._flusher is None:
            raise Unavailable("ingress is shutting down")
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._pending.append((envelope, future))
        self._has_work.set()
        if len(self._pending) >= self._max_batch:
            self._is_full.set()
        return await future

    async def _run(self) -> None:
        while True:
            await self._has_work.wait()
            if not self._pending:
                if self._closing:
                    return
                self._has_work.clear()
                continue
            await self._linger()
            batch = self._pending[: self._max_batch]
            del self._pending[: self._max_batch]
            if len(self._pending) < self._max_batch:
                self._is_full.clear()
            await self._flush(batch)

    async def _linger(self) -> None:
        """Wait a little for company, unless the batch is already full or we are closing."""
        if self._delay <= 0 or self._closing or len(self._pending) >= self._max_batch:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._is_full.wait(), self._delay)

    async def _flush(self, batch: list[tuple[Envelope, asyncio.Future[str]]]) -> None:
        try:
            stored = await self._write([envelope for envelope, _ in batch])
        except IngressRefusal as refusal:
            for _, future in batch:
                if not future.done():
                    future.set_exception(refusal)
            return
        except Exception as error:  # a bug in the write path must not kill the flusher: fail the batch
            log.exception("group commit write failed unexpectedly")
            for _, future in batch:
                if not future.done():
                    future.set_exception(Unavailable(f"write failed: {type(error).__name__}"))
            return
        # More than our own job waiting means the workers are behind: gather bigger batches meanwhile.
        self._delay = self._backlog_delay if stored.queue_depth > 1 else self._max_delay
        for _, future in batch:
            if not future.done():  # the client may have gone; the notification is stored regardless
                future.set_result(stored.job_id)
