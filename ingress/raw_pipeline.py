"""A flush's commands in one write and their replies in one deadline: the ingress's hot Redis path.

redis-py's asyncio pipeline packs every argument in Python and wraps each reply's read in a timeout of its
own (a timer scheduled and cancelled per reply); with one XADD per request that was about half of the
ingress's write path under cProfile. Here hiredis packs each command, and the client's socket timeout
bounds the reading of all the replies at once. Otherwise it behaves like that pipeline with
``raise_on_error=True`` on the ingress's client (which never re-sends): an error reply, a timeout or a lost
connection raises a ``RedisError``, and the connection, whose later replies may be unread, is closed
before it goes back to the pool.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence

import hiredis
from redis.asyncio import Redis as AsyncRedis
from redis.exceptions import TimeoutError as RedisTimeoutError

from greenq.core.contract.partitioned import Command


async def send_all(redis: AsyncRedis, commands: Sequence[Command]) -> list[object]:
    """Every command's reply, in order; raises on the first failure (nothing is re-sent)."""
    pool = redis.connection_pool
    connection = await pool.get_connection()  # type: ignore[no-untyped-call]
    try:
        # hiredis's stub types its argument as a one-element tuple; any tuple of str/bytes/int is packed.
        packed = [hiredis.pack_command(command) for command in commands]  # type: ignore[arg-type]
        await connection.send_packed_command(packed)
        try:
            async with asyncio.timeout(connection.socket_timeout):
                return [await connection.read_response(timeout=math.inf) for _ in commands]
        except TimeoutError as error:
            raise RedisTimeoutError(f"no reply within {connection.socket_timeout} s") from error
    except BaseException:
        await connection.disconnect(nowait=True)
        raise
    finally:
        await pool.release(connection)
