"""The end-to-end bench's order check (bench/ordering_router.py) on a real Redis: what counts as a violation,
and that the check runs inside a real worker's commit when loaded through ``GREENQ_ROUTER``."""

from __future__ import annotations

import logging
from typing import Any

import orjson
import pytest
from redis import Redis

from bench.ordering_router import ROUTER_PATH, check_order, order_counts, sequence_of
from greenq.core import keys
from greenq.core.contract import Envelope, NotificationQueue
from greenq.core.notification import Notification
from greenq.core.settings import WorkerSettings
from greenq.workers.context import HandlerContext
from tests.conftest import DrainFn, load_sample


def text_message(instance: int, sequence: int, chat: str = "79001234568@c.us") -> dict[str, Any]:
    """The textMessage sample as e2e.lua sends it: the connection's instance, a numbered idMessage."""
    data = load_sample("incomingMessageReceived__textMessage.json")
    data["instanceData"]["idInstance"] = instance
    data["senderData"]["chatId"] = chat
    data["idMessage"] = f"BENCH{instance % 100000:05d}{sequence:012d}"
    return data


def handle_in_order(redis: Redis, settings: WorkerSettings, messages: list[dict[str, Any]]) -> None:
    """Run the check on each message in turn, committing its write like a batch's MULTI/EXEC does."""
    for data in messages:
        writes = redis.pipeline(transaction=True)
        ctx = HandlerContext(redis, writes, settings, logging.getLogger("test"))
        check_order(
            Notification(data, data["typeWebhook"], "textMessage", Envelope(body="{}", source="webhook")), ctx
        )
        writes.execute()


@pytest.mark.parametrize(
    ("id_message", "sequence"),
    [
        ("BENCH00007000000000042", 42),
        ("BENCH00007000000000042x", None),
        ("BAE5F4886AFFF8B1", None),
        (None, None),
    ],
)
def test_only_bench_ids_carry_a_sequence(id_message: str | None, sequence: int | None) -> None:
    assert sequence_of(id_message) == sequence


def test_a_lower_sequence_of_its_chat_is_a_violation_a_repeated_one_is_not(
    redis_conn: Redis, worker_settings: WorkerSettings
) -> None:
    other = load_sample("incomingMessageReceived__textMessage.json")  # a real idMessage: not checked
    handle_in_order(
        redis_conn,
        worker_settings,
        [
            text_message(7700000001, 1),
            text_message(7700000001, 3),
            text_message(7700000001, 2),  # after 3: a violation
            text_message(7700000001, 3),  # a resend of 3: not one
            text_message(7700000002, 1),  # another instance's chat: its own sequence
            text_message(7700000001, 1, chat="71234567890@c.us"),  # another chat of the instance
            text_message(7700000001, 4),
            other,
        ],
    )

    counts = order_counts(redis_conn)

    assert (counts.checked, counts.violations, counts.chats) == (7, 1, 3)


def test_a_worker_loading_the_router_checks_order_in_its_commit(redis_conn: Redis, drain: DrainFn) -> None:
    queue = NotificationQueue(redis_conn)
    for sequence in (2, 1, 3):  # one job each, taken in this order by one worker
        queue.enqueue([Envelope.of_bytes(orjson.dumps(text_message(7700000001, sequence)), "webhook")])

    drain(router=ROUTER_PATH)

    counts = order_counts(redis_conn)
    assert (counts.checked, counts.violations, counts.chats) == (3, 1, 1)
    assert redis_conn.xlen(keys.event_stream("incomingMessageReceived")) == 3  # the stream sink ran too
