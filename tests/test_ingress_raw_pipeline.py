"""The ingress's flush writer (``ingress/raw_pipeline.py``) on a real Redis: replies in order, and every
failure raised as a RedisError with the connection dropped, never reused with replies still unread."""

from __future__ import annotations

import asyncio

import pytest
from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from greenq.core.contract.partitioned import Command
from greenq.ingress.raw_pipeline import send_all
from greenq.local.redis_server import LocalRedis
from tests.support.redis_proxy import Fault, RedisProxy

FLUSH: list[Command] = [
    ("XADD", "greenq:{p1}:stream", "*", "envelope", b'{"a":1}'),
    ("SET", "greenq:{p1}:scheduled", 1, "NX", "EX", 60),
]


def run_on(url: str, *batches: list[Command], timeout: float = 5) -> list[list[object] | Exception]:
    """Each batch through one client in turn; a batch that raised is its exception."""

    async def scenario() -> list[list[object] | Exception]:
        results: list[list[object] | Exception] = []
        async with AsyncRedis.from_url(url, socket_timeout=timeout) as redis:
            for batch in batches:
                try:
                    results.append(await send_all(redis, batch))
                except Exception as error:  # the test inspects it
                    results.append(error)
        return results

    return asyncio.run(scenario())


def test_replies_come_back_in_command_order(redis_server: LocalRedis, redis_conn: Redis) -> None:
    first, second = run_on(redis_server.url, FLUSH, FLUSH)

    assert isinstance(first, list)
    assert isinstance(second, list)
    assert [type(reply) for reply in first] == [bytes, bytes]
    assert first[1] == b"OK"
    assert second[1] is None  # the flag was set by the first flush only
    assert redis_conn.xlen("greenq:{p1}:stream") == 2


def test_an_error_reply_raises_and_the_next_flush_reads_only_its_own_replies(
    redis_server: LocalRedis, redis_conn: Redis
) -> None:
    redis_conn.set("not-a-stream", "x")
    failing: list[Command] = [("XADD", "not-a-stream", "*", "f", "v"), *FLUSH]

    failed, after = run_on(redis_server.url, failing, [("SET", "greenq:{p1}:scheduled", 1, "NX", "EX", 60)])

    assert isinstance(failed, ResponseError)
    # The failing flush's later replies (an entry id, OK) were never read on the next flush's connection.
    assert after == [None]


@pytest.mark.parametrize(("action", "error"), [("drop", RedisConnectionError), ("hold", RedisTimeoutError)])
def test_a_lost_or_late_reply_raises_a_redis_error(
    redis_server: LocalRedis, redis_conn: Redis, action: str, error: type[Exception]
) -> None:
    proxy = RedisProxy("127.0.0.1", redis_server.port)
    lost = proxy.add(Fault("XADD", action))  # type: ignore[arg-type]
    try:
        failed, after = run_on(proxy.url(redis_server.password), FLUSH, FLUSH, timeout=0.5)
    finally:
        lost.release()
        proxy.close()

    assert isinstance(failed, error)
    # The next flush runs on a fresh connection and reads its own two replies (an id, then its flag's).
    assert isinstance(after, list)
    assert isinstance(after[0], bytes)
    assert after[0].count(b"-") == 1
    assert redis_conn.xlen("greenq:{p1}:stream") == 2  # Redis executed the first XADD: its reply was lost
