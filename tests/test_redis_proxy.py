"""The fault proxy itself (``tests.support.redis_proxy``): each fault does what the harness relies on."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest
from redis import Redis
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.retry import Retry

from greenq.local.redis_server import LocalRedis
from tests.support.redis_proxy import Fault, RedisProxy, RespReader


@pytest.fixture
def proxy(redis_server: LocalRedis) -> Iterator[RedisProxy]:
    relay = RedisProxy("127.0.0.1", redis_server.port)
    yield relay
    relay.close()


def client(proxy: RedisProxy, redis_server: LocalRedis) -> Redis:
    """A client that never retries, so each fault reaches the test as it happened."""
    return Redis.from_url(proxy.url(redis_server.password), socket_timeout=5, retry=Retry(NoBackoff(), 0))


def test_commands_are_parsed_whole_even_when_split_across_reads() -> None:
    reader = RespReader()
    raw = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\nv1\r\n*1\r\n$4\r\nPING\r\n"

    parsed = reader.feed(raw[:7]) + reader.feed(raw[7:30]) + reader.feed(raw[30:])

    assert [command for command, _ in parsed] == [[b"SET", b"k", b"v1"], [b"PING"]]
    assert b"".join(chunk for _, chunk in parsed) == raw


def test_drop_applies_the_command_and_loses_only_its_reply(
    proxy: RedisProxy, redis_server: LocalRedis, redis_conn: Redis
) -> None:
    fault = proxy.add(Fault("INCRBY", "drop", nth=2))  # redis-py sends INCR as INCRBY
    relayed = client(proxy, redis_server)
    relayed.incr("n")

    with pytest.raises(RedisConnectionError):
        relayed.incr("n")

    assert fault.fired.is_set()
    assert redis_conn.get("n") == b"2"  # Redis executed the command whose reply was lost
    assert relayed.incr("n") == 3  # a new connection works
    assert proxy.counts["INCRBY"] == 3


def test_cut_closes_the_connection_before_the_command_reaches_redis(
    proxy: RedisProxy, redis_server: LocalRedis, redis_conn: Redis
) -> None:
    fault = proxy.add(Fault("INCRBY", "cut", nth=2))
    relayed = client(proxy, redis_server)
    relayed.incr("n")

    with pytest.raises(RedisConnectionError):
        relayed.incr("n")

    assert fault.fired.is_set()
    assert redis_conn.get("n") == b"1"  # the cut command never ran
    assert relayed.incr("n") == 2


def answered_after_release(fault: Fault, call: Callable[[], object], applied: Callable[[], bool]) -> object:
    """Run ``call`` on a thread; once ``fault`` fired, check Redis ``applied`` the command but ``call`` got no
    answer yet, release the fault; what ``call`` returned or raised."""
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(call())
        except RedisConnectionError as error:
            outcome.append(error)

    caller = threading.Thread(target=run)
    caller.start()
    assert fault.fired.wait(10)
    assert applied()
    assert outcome == []  # not yet answered
    fault.release()
    caller.join(10)
    return outcome[0]


def test_hold_withholds_the_reply_until_released(
    proxy: RedisProxy, redis_server: LocalRedis, redis_conn: Redis
) -> None:
    fault = proxy.add(Fault("SET", "hold"))

    outcome = answered_after_release(
        fault, lambda: client(proxy, redis_server).set("held", 1), lambda: redis_conn.get("held") == b"1"
    )

    assert isinstance(outcome, RedisConnectionError)


def test_pause_delivers_the_withheld_reply_on_release_and_the_connection_goes_on(
    proxy: RedisProxy, redis_server: LocalRedis, redis_conn: Redis
) -> None:
    fault = proxy.add(Fault("INCRBY", "pause"))
    relayed = client(proxy, redis_server)

    outcome = answered_after_release(
        fault, lambda: relayed.incr("paused"), lambda: redis_conn.get("paused") == b"1"
    )

    assert outcome == 1
    assert relayed.incr("paused") == 2  # the same connection, replies in order again
    assert proxy.counts["INCRBY"] == 2


def test_delay_and_refuse(proxy: RedisProxy, redis_server: LocalRedis) -> None:
    delayed = proxy.add(Fault("GET", "delay", seconds=0.01))
    assert client(proxy, redis_server).get("missing") is None
    assert delayed.fired.is_set()

    proxy.refusing = True
    with pytest.raises(RedisConnectionError):
        client(proxy, redis_server).ping()
