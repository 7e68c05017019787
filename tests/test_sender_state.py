"""Per-(chat, sender) state (``ctx.sender_state``, README: Writing a bot) with a real Redis and real
workers, in jobs and ordered mode: each member of a group keeps a conversation of their own next to the
group's, within a batch and across batches, in the chat's partition; a router that keeps no state, or a
notification without a sender, has none. Handlers: ``tests.support.reply_bot:members``.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from redis import Redis

from greenq.core import keys, partitions
from greenq.core.contract import Envelope
from greenq.core.settings import WorkerSettings
from greenq.local.redis_server import LocalRedis
from greenq.workers.handling import NO_SENDER_STATE
from greenq.workers.reading import Reader
from greenq.workers.results import Valid
from greenq.workers.state import ChatStateDisabled, ChatStates
from greenq.workers.validation import NotificationValidator
from tests.conftest import DrainFn, load_sample
from tests.support.modes import MODES, PARTITIONS, send
from tests.support.ordering import message
from tests.support.reply_bot import seen

MEMBERS = "tests.support.reply_bot:members"
GROUP = "120363000000000001@g.us"


def group_message(seq: int, member: str) -> bytes:
    data = orjson.loads(message("g", seq))
    data["senderData"] = dict(data["senderData"], chatId=GROUP, sender=f"{member}@c.us")
    return orjson.dumps(data)


def member_key(member: str, mode: str) -> str:
    chat = partitions.chat_key(orjson.loads(group_message(0, member)))
    count = PARTITIONS if mode == "partitioned" else WorkerSettings.model_fields["partitions"].default
    return keys.sender_state_key(chat, f"{member}@c.us", partitions.partition_of(chat, count))


def stored(redis: Redis, key: str) -> Any:
    raw = redis.get(key)
    return None if raw is None else orjson.loads(raw)


@pytest.mark.parametrize("mode", MODES)
def test_each_member_of_a_group_keeps_their_own_state_next_to_the_group_s(
    redis_server: LocalRedis, redis_conn: Redis, drain: DrainFn, mode: str
) -> None:
    talk = ["ann", "bob", "ann", "ann", "bob"]
    bodies = [group_message(seq, member) for seq, member in enumerate(talk)]
    for batch in (bodies[:3], bodies[3:]):  # within one batch and across batches (another worker)
        send(redis_server, redis_conn, mode, batch)
        drain(router=MEMBERS, state_ttl_seconds=600, **MODES[mode])
    assert [value for _, value in seen(redis_conn)] == [
        "ann@c.us:1/1",
        "bob@c.us:1/2",
        "ann@c.us:2/3",
        "ann@c.us:3/4",
        "bob@c.us:2/5",
    ]
    assert stored(redis_conn, member_key("ann", mode)) == {"name": "", "data": {"n": 3}}
    assert stored(redis_conn, member_key("bob", mode)) == {"name": "", "data": {"n": 2}}
    assert 0 < redis_conn.ttl(member_key("ann", mode)) <= 600
    if mode == "partitioned":  # under its chat's partition tag, like the chat's own state
        chat = partitions.chat_key(orjson.loads(group_message(0, "ann")))
        assert member_key("ann", mode).startswith(f"greenq:{{p{partitions.partition_of(chat, PARTITIONS)}}}:")


def read(body: bytes, chat_state: bool = True) -> Valid:
    reader = Reader(NotificationValidator(), 0, WorkerSettings.model_fields["partitions"].default, chat_state)
    result = reader.read(Envelope.of_bytes(body, "webhook").to_wire(), "test")
    assert isinstance(result, Valid)
    return result


@pytest.mark.parametrize("chat_state", [True, False])
def test_only_a_router_that_keeps_state_reads_the_sender_s(chat_state: bool) -> None:
    valid = read(group_message(0, "ann"), chat_state)
    assert valid.sender_state_key == (member_key("ann", "jobs") if chat_state else None)
    if chat_state:
        assert valid.sender_state_key != valid.state_key


def test_a_notification_without_a_sender_has_no_sender_state() -> None:
    valid = read(orjson.dumps(load_sample("outgoingMessageStatus__sent-sendByApi.json")))
    assert valid.state_key is not None
    assert valid.sender_state_key is None
    handle = ChatStates({}).open(valid.sender_state_key, NO_SENDER_STATE)
    with pytest.raises(ChatStateDisabled, match="no sender"):
        handle.set("menu")
