"""greenq's sync Redis client: its command packer writes exactly what redis-py's would, on a real Redis."""

from __future__ import annotations

from typing import Any

import pytest
from redis.connection import HiredisRespSerializer
from redis.exceptions import DataError

from greenq.core.redis_conn import CommandPacker, connect
from greenq.local.redis_server import LocalRedis

COMMANDS: list[tuple[Any, ...]] = [
    ("SET", "greenq:dedup:abc", "unit", "EX", 86400),
    ("XADD", "greenq:{p3}:stream", "*", "envelope", b'{"version":1}\x00\xff'),
    ("CLIENT SETNAME", "greenq-worker"),  # a command name of two words
    (b"CONFIG GET", "maxmemory"),
    ("SET", "k", 1.5),
    ("SET", "k", memoryview(b"abc")),
    ("SET", "k", bytearray(b"abc")),  # hiredis refuses it as it is: redis-py's packer copies it
    ("SET", "k", "caf\u00e9"),
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda command: str(command[0]))
def test_packs_every_command_as_redis_py_does(command: tuple[Any, ...]) -> None:
    assert CommandPacker().pack(*command) == HiredisRespSerializer().pack(*command)


def test_refuses_what_redis_py_refuses() -> None:
    with pytest.raises(DataError):
        CommandPacker().pack("SET", "k", object())


def test_the_client_built_by_connect_uses_it(redis_server: LocalRedis) -> None:
    client = connect(redis_server.url, socket_timeout=5)
    try:
        client.set("greenq:test:packer", bytearray(b"v"))
        with client.pipeline(transaction=True) as pipe:
            pipe.incr("greenq:test:count")
            pipe.get("greenq:test:packer")
            assert pipe.execute() == [1, b"v"]
        connection = client.connection_pool.get_connection()
        try:
            assert isinstance(connection._command_packer, CommandPacker)
        finally:
            client.connection_pool.release(connection)
    finally:
        client.delete("greenq:test:packer", "greenq:test:count")
        client.close()
