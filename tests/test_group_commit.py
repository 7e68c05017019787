"""Group commit against a real redis-server: fewer writes than requests, each request still durable."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import pytest
from redis import Redis
from rq import Queue

from greenq.contract import Envelope
from greenq.procs import free_port
from ingress.enqueue import Enqueuer, Stored
from ingress.errors import Unavailable
from ingress.group_commit import GroupCommitter


def stored_request_ids(queue: Queue) -> list[str]:
    """Request ids in queue order, across all jobs."""
    ids: list[str] = []
    for job in queue.get_jobs():
        ids.extend(Envelope.from_wire(wire).request_id for wire in job.args[0])
    return ids


async def submit_all(committer: GroupCommitter, envelopes: Sequence[Envelope]) -> list[str]:
    await committer.start()
    try:
        return list(await asyncio.gather(*(committer.submit(e) for e in envelopes)))
    finally:
        await committer.stop()


def test_concurrent_requests_share_writes_in_arrival_order(redis_conn: Redis, queue: Queue) -> None:
    envelopes = [Envelope(body=f'{{"n": {n}}}', source="webhook", request_id=f"r{n:04}") for n in range(500)]
    committer = GroupCommitter(Enqueuer(redis_conn).enqueue, max_batch=64, max_delay=0.005)

    job_ids = asyncio.run(submit_all(committer, envelopes))

    assert len(job_ids) == 500
    assert stored_request_ids(queue) == [e.request_id for e in envelopes]
    assert len(set(job_ids)) == queue.count
    assert queue.count <= 500 // 64 + 2
    assert max(len(job.args[0]) for job in queue.get_jobs()) == 64


def test_a_request_is_answered_only_after_its_write(redis_conn: Redis, queue: Queue) -> None:
    release = threading.Event()
    real = Enqueuer(redis_conn).enqueue

    def slow_write(batch: Sequence[Envelope]) -> Stored:
        release.wait(5)
        return real(batch)

    async def scenario() -> tuple[bool, int]:
        committer = GroupCommitter(slow_write, max_delay=0)
        await committer.start()
        pending = asyncio.ensure_future(committer.submit(Envelope(body="{}", source="webhook")))
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
    dead = Redis(port=free_port(), socket_connect_timeout=0.5, socket_timeout=0.5)
    committer = GroupCommitter(Enqueuer(dead).enqueue, max_delay=0.01)
    envelopes = [Envelope(body="{}", source="webhook") for _ in range(10)]

    async def scenario() -> list[object]:
        await committer.start()
        results = await asyncio.gather(*(committer.submit(e) for e in envelopes), return_exceptions=True)
        await committer.stop()
        return list(results)

    results = asyncio.run(scenario())

    assert all(isinstance(result, Unavailable) for result in results)


def test_stop_writes_what_is_pending_then_refuses_new_work(redis_conn: Redis, queue: Queue) -> None:
    async def scenario() -> None:
        committer = GroupCommitter(Enqueuer(redis_conn).enqueue, max_delay=1.0, max_batch=1000)
        await committer.start()
        waiting = [
            asyncio.ensure_future(committer.submit(Envelope(body="{}", source="webhook"))) for _ in range(3)
        ]
        await asyncio.sleep(0)
        await committer.stop()
        await asyncio.gather(*waiting)
        with pytest.raises(Unavailable, match="shutting down"):
            await committer.submit(Envelope(body="{}", source="webhook"))

    asyncio.run(scenario())

    assert len(stored_request_ids(queue)) == 3


@pytest.mark.parametrize(("backlog_delay", "expected_jobs"), [(0.0, 3 + 1 + 9), (0.5, 3 + 1 + 1)])
def test_a_backlog_makes_the_committer_gather_bigger_batches(
    redis_conn: Redis, queue: Queue, backlog_delay: float, expected_jobs: int
) -> None:
    """With workers behind (3 jobs waiting), trickling requests wait for each other and share one job."""
    enqueue = Enqueuer(redis_conn).enqueue
    for _ in range(3):
        enqueue([Envelope(body="{}", source="webhook")])

    async def scenario() -> None:
        committer = GroupCommitter(enqueue, max_delay=0, backlog_delay=backlog_delay)
        await committer.start()
        await committer.submit(Envelope(body="{}", source="webhook"))  # learns the queue depth
        trickle = []
        for _ in range(9):
            trickle.append(asyncio.ensure_future(committer.submit(Envelope(body="{}", source="webhook"))))
            await asyncio.sleep(0.01)
        await asyncio.gather(*trickle)
        await committer.stop()

    asyncio.run(scenario())

    assert queue.count == expected_jobs
