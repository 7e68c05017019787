"""Group commit against a real redis-server: fewer writes than requests, each request still durable."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

import pytest
from redis.asyncio import Redis as AsyncRedis
from rq import Queue

from greenq.core.contract import Envelope
from greenq.ingress.enqueue import Enqueuer, Stored
from greenq.ingress.errors import Unavailable
from greenq.ingress.group_commit import GroupCommitter, WriteBatch
from greenq.local.procs import free_port
from greenq.local.redis_server import LocalRedis
from tests.support.redis_proxy import Fault, RedisProxy


def stored_request_ids(queue: Queue) -> list[str]:
    """Request ids in queue order, across all jobs."""
    ids: list[str] = []
    for job in queue.get_jobs():
        ids.extend(Envelope.from_wire(wire).request_id for wire in job.args[0])
    return ids


def envelope(n: int = 0) -> Envelope:
    return Envelope(body=f'{{"n": {n}}}', source="webhook", request_id=f"r{n:04}")


def test_concurrent_requests_share_writes_in_arrival_order(redis_server: LocalRedis, queue: Queue) -> None:
    envelopes = [envelope(n) for n in range(500)]

    async def scenario() -> list[str]:
        async with AsyncRedis.from_url(redis_server.url) as redis:
            committer = GroupCommitter(Enqueuer(redis).enqueue, max_batch=64, max_delay=0.005)
            await committer.start()
            try:
                return list(await asyncio.gather(*(committer.submit(e) for e in envelopes)))
            finally:
                await committer.stop()

    job_ids = asyncio.run(scenario())

    assert len(job_ids) == 500
    assert stored_request_ids(queue) == [e.request_id for e in envelopes]
    assert len(set(job_ids)) == queue.count
    assert queue.count <= 500 // 64 + 2
    assert max(len(job.args[0]) for job in queue.get_jobs()) == 64


def test_a_request_is_answered_only_after_redis_acknowledged_its_write(
    redis_server: LocalRedis, queue: Queue
) -> None:
    """Redis has executed the write but its reply is held back (the proxy): the request must still wait."""
    proxy = RedisProxy("127.0.0.1", redis_server.port)
    exec_reply = proxy.add(Fault("EXEC", "pause"))

    async def scenario() -> tuple[bool, int, str]:
        async with AsyncRedis.from_url(proxy.url(redis_server.password)) as redis:
            committer = GroupCommitter(Enqueuer(redis).enqueue, max_delay=0)
            await committer.start()
            pending = asyncio.ensure_future(committer.submit(envelope()))
            assert await asyncio.to_thread(exec_reply.fired.wait, 30), "the write never reached Redis"
            answered_while_held, stored_while_held = pending.done(), queue.count
            exec_reply.release()
            job_id = await pending
            await committer.stop()
        return answered_while_held, stored_while_held, job_id

    try:
        answered_while_held, stored_while_held, job_id = asyncio.run(scenario())
    finally:
        proxy.close()

    assert stored_while_held == 1  # the job was in Redis...
    assert not answered_while_held  # ...and the request still waited for Redis's reply
    assert queue.get_job_ids() == [job_id]


def test_failed_write_refuses_every_request_in_the_batch() -> None:
    async def scenario() -> list[object]:
        dead = AsyncRedis(port=free_port(), socket_connect_timeout=0.5, socket_timeout=0.5)
        committer = GroupCommitter(Enqueuer(dead).enqueue, max_delay=0.01)
        await committer.start()
        results = await asyncio.gather(
            *(committer.submit(envelope(n)) for n in range(10)), return_exceptions=True
        )
        await committer.stop()
        await dead.aclose()
        return list(results)

    results = asyncio.run(scenario())

    assert all(isinstance(result, Unavailable) for result in results)


def test_stop_writes_what_is_pending_then_refuses_new_work(redis_server: LocalRedis, queue: Queue) -> None:
    async def scenario() -> None:
        async with AsyncRedis.from_url(redis_server.url) as redis:
            committer = GroupCommitter(Enqueuer(redis).enqueue, max_delay=1.0, max_batch=1000)
            await committer.start()
            waiting = [asyncio.ensure_future(committer.submit(envelope(n))) for n in range(3)]
            await asyncio.sleep(0)
            await committer.stop()
            await asyncio.gather(*waiting)
            with pytest.raises(Unavailable, match="shutting down"):
                await committer.submit(envelope())

    asyncio.run(scenario())

    assert len(stored_request_ids(queue)) == 3


@dataclass
class CountedWrites:
    """The real write, counting the writes the committer has started (counted before the first await)."""

    write: WriteBatch
    started: int = 0

    async def __call__(self, batch: Sequence[Envelope]) -> Stored:
        self.started += 1
        return await self.write(batch)


def test_with_a_backlog_trickling_requests_wait_for_each_other_in_one_job(
    redis_server: LocalRedis, queue: Queue
) -> None:
    """With workers behind (3 jobs waiting), the committer lingers for company instead of writing each
    request alone. Each request is followed by a Redis round trip, during which a committer that did not
    linger would start writing it; the only write starts when the ninth request fills the batch."""

    async def scenario() -> tuple[list[int], int]:
        async with AsyncRedis.from_url(redis_server.url) as redis:
            writes = CountedWrites(Enqueuer(redis).enqueue)
            for n in range(3):
                await Enqueuer(redis).enqueue([envelope(n)])
            committer = GroupCommitter(writes, max_delay=0, max_batch=9, backlog_delay=60)
            await committer.start()
            await committer.submit(envelope(100))  # written at once (no backlog known yet); sees 4 jobs
            started, trickle = [], []
            for n in range(9):
                trickle.append(asyncio.ensure_future(committer.submit(envelope(n))))
                if n < 8:  # the ninth fills the batch: its write starts now
                    await redis.ping()
                    started.append(writes.started)
            await asyncio.gather(*trickle)
            await committer.stop()
            return started, writes.started

    started, writes = asyncio.run(scenario())

    assert started == [1] * 8  # still only the write before the backlog was known: the rest wait for company
    assert writes == 2
    assert queue.count == 3 + 1 + 1
    assert stored_request_ids(queue)[-9:] == [envelope(n).request_id for n in range(9)]


def test_without_a_backlog_a_request_is_written_at_once(redis_server: LocalRedis, queue: Queue) -> None:
    """An empty queue, then one holding only our own job: no backlog, so no lingering (60 s if it did)."""

    async def scenario() -> None:
        async with AsyncRedis.from_url(redis_server.url) as redis:
            writes = CountedWrites(Enqueuer(redis).enqueue)
            committer = GroupCommitter(writes, max_delay=0, max_batch=9, backlog_delay=60)
            await committer.start()
            for n in range(2):
                pending = asyncio.ensure_future(committer.submit(envelope(n)))
                await redis.ping()
                assert writes.started == n + 1, "the committer lingers without a backlog"
                await pending
            await committer.stop()

    asyncio.run(scenario())

    assert queue.count == 2


def test_the_stored_job_is_exactly_what_rq_writes(redis_server: LocalRedis, queue: Queue) -> None:
    """Recorded-then-replayed commands leave a job RQ itself can fetch and run."""

    async def scenario() -> Stored:
        async with AsyncRedis.from_url(redis_server.url) as redis:
            return await Enqueuer(redis).enqueue([envelope(7)])

    stored = asyncio.run(scenario())

    [job] = queue.get_jobs()
    assert job.id == stored.job_id
    assert job.func_name == "greenq.workers.jobs.process_batch"
    assert [Envelope.from_wire(w).request_id for w in job.args[0]] == ["r0007"]
    assert stored.queue_depth == 1
