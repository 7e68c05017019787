"""Group commit against a real redis-server: fewer writes than requests, each request still durable."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
from redis.asyncio import Redis as AsyncRedis
from rq import Queue

from greenq.core.contract import Envelope
from greenq.ingress.enqueue import Enqueuer, Stored
from greenq.ingress.errors import Unavailable
from greenq.ingress.group_commit import GroupCommitter
from greenq.local.procs import free_port
from greenq.local.redis_server import LocalRedis


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


def test_a_request_is_answered_only_after_its_write(redis_server: LocalRedis, queue: Queue) -> None:
    async def scenario() -> tuple[bool, int]:
        release = asyncio.Event()
        async with AsyncRedis.from_url(redis_server.url) as redis:
            real = Enqueuer(redis).enqueue

            async def slow_write(batch: Sequence[Envelope]) -> Stored:
                await release.wait()
                return await real(batch)

            committer = GroupCommitter(slow_write, max_delay=0)
            await committer.start()
            pending = asyncio.ensure_future(committer.submit(envelope()))
            await asyncio.sleep(0.05)
            answered_before_write = pending.done()
            release.set()
            await pending
            await committer.stop()
        return answered_before_write, queue.count

    answered_before_write, stored = asyncio.run(scenario())

    assert not answered_before_write
    assert stored == 1


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


@pytest.mark.parametrize(("backlog_delay", "expected_jobs"), [(0.0, 3 + 1 + 9), (0.5, 3 + 1 + 1)])
def test_a_backlog_makes_the_committer_gather_bigger_batches(
    redis_server: LocalRedis, queue: Queue, backlog_delay: float, expected_jobs: int
) -> None:
    """With workers behind (3 jobs waiting), trickling requests wait for each other and share one job."""

    async def scenario() -> None:
        async with AsyncRedis.from_url(redis_server.url) as redis:
            enqueue = Enqueuer(redis).enqueue
            for n in range(3):
                await enqueue([envelope(n)])
            committer = GroupCommitter(enqueue, max_delay=0, backlog_delay=backlog_delay)
            await committer.start()
            await committer.submit(envelope())  # learns the queue depth
            trickle = []
            for n in range(9):
                trickle.append(asyncio.ensure_future(committer.submit(envelope(n))))
                await asyncio.sleep(0.01)
            await asyncio.gather(*trickle)
            await committer.stop()

    asyncio.run(scenario())

    assert queue.count == expected_jobs


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
