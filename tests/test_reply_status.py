"""Reply statuses (``ctx.reply_status``, README: Writing a bot) with a real Redis and real workers: the
built-in outgoingMessageStatus route keeps each message's furthest status in its status hash whatever
order the notifications arrive in, beside the user's own routes; a handler reads it with the sender's
record. The sender is played by the test (it writes the record and the hash's ``entry`` field).
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
import pytest
from redis import Redis

from greenq.core import keys
from greenq.core.outbox import STATUS_ENTRY, ReplyRecord
from greenq.core.settings import WorkerSettings
from greenq.local.redis_server import LocalRedis
from greenq.workers.context import HandlerContext
from tests.conftest import DrainFn, load_sample
from tests.support.modes import MODES, send
from tests.support.ordering import message
from tests.support.reply_bot import seen

TRACKER = "tests.support.reply_bot:tracker"
STATUS = load_sample("outgoingMessageStatus__sent-sendByApi.json")
FAILED = load_sample("outgoingMessageStatus__failed-SWE004-group.json")


def status(id_message: str, value: str, at: int, **extra: Any) -> bytes:
    return orjson.dumps({**STATUS, "idMessage": id_message, "status": value, "timestamp": at, **extra})


def hash_of(redis: Redis, id_message: str) -> dict[str, str]:
    raw: dict[bytes, bytes] = redis.hgetall(keys.reply_id_key(id_message))  # type: ignore[assignment]
    return {key.decode(): value.decode() for key, value in raw.items()}


@pytest.mark.parametrize("mode", MODES)
def test_a_status_only_moves_forward_whatever_order_the_notifications_arrive_in(
    redis_server: LocalRedis, redis_conn: Redis, drain: DrainFn, mode: str
) -> None:
    batches = [
        [status("M1", "delivered", 2), status("M1", "sent", 1)],  # one batch, out of order
        [status("M1", "read", 3)],
        [status("M1", "delivered", 4), status("M1", "played", 5)],  # late, and one greenq does not rank
        [status("M2", "sent", 1), status("M2", "failed", 2, description="SWE004"), status("M2", "read", 3)],
        [status("M3", "read", 1, sendByApi=False)],  # sent from the phone: not greenq's
    ]
    for batch in batches:
        send(redis_server, redis_conn, mode, batch)
        drain(router=TRACKER, reply_ttl_seconds=600, **MODES[mode])
    assert hash_of(redis_conn, "M1") == {
        "status": "read", "rank": "3", "updated": "3", "status_text": "played"
    }  # fmt: skip
    assert hash_of(redis_conn, "M2") == {
        "status": "failed", "rank": "4", "updated": "2", "description": "SWE004"
    }  # fmt: skip
    assert hash_of(redis_conn, "M3") == {}
    assert 0 < redis_conn.ttl(keys.reply_id_key("M1")) <= 600
    # The user's own route saw every one of them too (the built-in route runs after it).
    assert len(seen(redis_conn)) == sum(len(batch) for batch in batches)


def test_the_status_route_keeps_the_sender_s_field_and_a_failure_s_description_under_any_router(
    redis_server: LocalRedis, redis_conn: Redis, drain: DrainFn
) -> None:
    id_message = str(FAILED["idMessage"])
    redis_conn.hset(keys.reply_id_key(id_message), STATUS_ENTRY, "entry-1")  # the sender's field
    send(redis_server, redis_conn, "jobs", [orjson.dumps(FAILED)])
    drain(router="tests.support.routers:empty_router")  # the built-in route comes with every worker
    assert redis_conn.hgetall(keys.OUTCOME_COUNTS) == {b"unhandled": b"1"}  # no route of the user's took it
    stored = hash_of(redis_conn, id_message)
    assert stored[STATUS_ENTRY] == "entry-1"
    assert stored["status"] == FAILED["status"] == "failed"
    assert stored.get("description") == FAILED.get("description")


def play_sender(redis: Redis, entry_id: str, id_message: str) -> None:
    """What the sender does once GREEN API answered: the record ``sent`` with the idMessage, the index."""
    record = ReplyRecord.decode(redis.get(keys.reply_key(entry_id)))  # type: ignore[arg-type]
    assert record is not None
    sent = record.moved("sending", 10.0, attempts=1).moved("sent", 11.0, id_message=id_message)
    redis.set(keys.reply_key(entry_id), sent.encode(), keepttl=True)
    redis.hset(keys.reply_id_key(id_message), STATUS_ENTRY, entry_id)


def test_a_handler_follows_its_reply_from_queued_to_read(
    redis_server: LocalRedis, redis_conn: Redis, drain: DrainFn, worker_settings: WorkerSettings
) -> None:
    send(redis_server, redis_conn, "jobs", [message("a", 0)])
    drain(router="tests.support.reply_bot:replier")
    entry_id = seen(redis_conn)[0][1]  # what ctx.reply returned
    ctx = HandlerContext(redis_conn, redis_conn.pipeline(), worker_settings, logging.getLogger("test"))
    queued = ctx.reply_status(entry_id)
    assert queued is not None
    assert (queued.state, queued.id_message, queued.reported) == ("queued", None, None)

    play_sender(redis_conn, entry_id, "OUT-1")
    sent = ctx.reply_status(entry_id)
    assert sent is not None
    assert (sent.state, sent.id_message) == ("sent", "OUT-1")

    send(redis_server, redis_conn, "jobs", [status("OUT-1", "read", 7), status("OUT-1", "delivered", 6)])
    drain()
    read = ctx.reply_status(entry_id)
    assert read is not None
    assert (read.state, read.reported, read.reported_at) == ("read", "read", 7.0)
    assert read.record.history == ("queued", "sending", "sent")
    assert ctx.reply_status("no-such-entry") is None
