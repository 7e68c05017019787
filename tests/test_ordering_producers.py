"""Ordered mode for every producer: the poller, ``greenq reconcile`` and ``greenq dlq replay`` append to the
chat's partition like the ingress, so handlers see one chat's notifications in acceptance order whatever
their source. Real redis-server, the real ingress writer, the simulator, real RQ burst workers.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
import pytest
from redis import Redis
from redis.asyncio import Redis as AsyncRedis

from greenq.core import keys, partitions
from greenq.core.contract import ENVELOPE_FIELD, Envelope, NotificationQueue, PartitionedQueue
from greenq.core.deadletters import DeadLetterStore
from greenq.core.notification import unwrap
from greenq.ingress.partitioned import PartitionedEnqueuer
from greenq.local.redis_server import LocalRedis
from greenq.simulator.control import SimulatorControl
from tests.conftest import DrainFn
from tests.support.ops_cli import Cli
from tests.support.ordering import (
    ORDERED,
    accept,
    message,
    partition_entries,
    partition_stream,
    queued_functions,
    seen_by_handler,
    waiting_envelopes,
)
from tests.support.poller import PollerThread, fast_settings, instance
from tests.support.processes import wait_until
from tests.support.reconcile import journal_only, one_pass, settings_for
from tests.support.simulator import INSTANCE, INSTANCE_TOKEN

#: Enough partitions that chats spread over several (the reconcile test checks it does).
PARTITIONS = 4
SPREAD = {**ORDERED, "partitions": PARTITIONS}
CHATS = ("a", "b", "c")
ORDERED_ENV = {"GREENQ_ORDERING": "partitioned", "GREENQ_PARTITIONS": "1"}


def chat_message(chat: str, seq: int, **steering: Any) -> bytes:
    """A message of the simulator's instance, so webhooks and pulled copies share chat keys."""
    return message(chat, seq, id_instance=INSTANCE, **steering)


def partition_of(chat: str) -> int:
    return partitions.partition_of(partitions.chat_key(orjson.loads(chat_message(chat, 0))), PARTITIONS)


def described(envelopes: list[Envelope]) -> list[tuple[str, str]]:
    """(source, idMessage) of each envelope; a pulled body is GREEN API's wrapper, read inside."""
    return [(envelope.source, str(_notification(envelope)["idMessage"])) for envelope in envelopes]


def _notification(envelope: Envelope) -> dict[str, Any]:
    data = unwrap(orjson.loads(envelope.body))
    assert isinstance(data, dict)
    return data


def test_polled_notifications_join_their_chat_in_acceptance_order(
    simulator: tuple[str, SimulatorControl], redis_server: LocalRedis, redis_conn: Redis, drain: DrainFn
) -> None:
    url, control = simulator
    alpha = instance("alpha", url, INSTANCE, INSTANCE_TOKEN)
    settings = fast_settings(redis_server.url, [alpha], ordering="partitioned", partitions=PARTITIONS)
    poller = PollerThread(settings).start()
    try:
        accept(redis_server, [chat_message("a", 0)], count=PARTITIONS)
        control.add(
            INSTANCE, [orjson.loads(chat_message("a", 1, **{"raise": 1})), orjson.loads(chat_message("a", 2))]
        )
        wait_until(lambda: control.stats(INSTANCE)["deleted"] == 2, 30, "2 deletes")
        accept(redis_server, [chat_message("a", 3)], count=PARTITIONS)
        control.add(INSTANCE, [orjson.loads(chat_message("a", 4))])
        wait_until(lambda: control.stats(INSTANCE)["deleted"] == 3, 30, "3 deletes")
    finally:
        poller.stop()

    sources = ["webhook", "poll", "poll", "webhook", "poll"]
    expected = [(source, f"a-{seq:03d}") for seq, source in enumerate(sources)]
    assert described(partition_entries(redis_conn, partition_of("a"))) == expected
    assert described(waiting_envelopes(redis_conn, PARTITIONS)) == expected  # nowhere else, no batch job
    assert queued_functions(redis_conn) == [keys.DRAIN_FUNCTION]
    drain(**SPREAD)
    order = seen_by_handler(redis_conn)
    assert order[("a", "record")] == [0, 1, 2, 3, 4]
    assert order[("a", "flaky")] == [0, 1, 2, 3, 4]  # the polled retry held its chat, webhooks too


def test_recovered_notifications_join_their_chats_in_acceptance_order(
    simulator: tuple[str, SimulatorControl], redis_server: LocalRedis, redis_conn: Redis, drain: DrainFn
) -> None:
    """Three chats over several partitions: one transaction per partition, each with its markers."""
    assert len({partition_of(chat) for chat in CHATS}) > 1
    url, control = simulator
    lost = [dict(orjson.loads(chat_message(chat, 1)), timestamp=int(time.time()) - 120) for chat in CHATS]
    journal_only(control, INSTANCE, lost)
    accept(redis_server, [chat_message(chat, 0) for chat in CHATS], count=PARTITIONS)
    settings = settings_for(url, redis_server, ordering="partitioned", partitions=PARTITIONS)

    finished = one_pass(settings, redis_conn)
    accept(redis_server, [chat_message(chat, 2) for chat in CHATS], count=PARTITIONS)

    assert finished.reports["first"].recovered == len(CHATS)
    assert len(redis_conn.keys(keys.reconciled_key("*"))) == len(CHATS)
    for chat in CHATS:
        entries = described(partition_entries(redis_conn, partition_of(chat)))
        assert [entry for entry in entries if entry[1].startswith(chat)] == [
            ("webhook", f"{chat}-000"),
            ("reconcile", f"{chat}-001"),
            ("webhook", f"{chat}-002"),
        ]
    assert len(waiting_envelopes(redis_conn, PARTITIONS)) == 3 * len(CHATS)  # no batch job
    assert set(queued_functions(redis_conn)) == {keys.DRAIN_FUNCTION}
    drain(**SPREAD)
    order = seen_by_handler(redis_conn)
    for chat in CHATS:
        assert order[(chat, "record")] == order[(chat, "flaky")] == [0, 1, 2]


def test_a_replay_is_accepted_when_it_is_replayed(
    redis_server: LocalRedis, redis_conn: Redis, drain: DrainFn, cli: Cli
) -> None:
    """Behind what its chat accepted before the replay, ahead of what it accepts after."""
    accept(redis_server, [message("a", 0, **{"raise": 99}), message("a", 1)])
    drain(**ORDERED)
    [letter] = DeadLetterStore(redis_conn).entries()
    accept(redis_server, [message("a", 2)])

    assert cli("dlq", "replay", str(letter.entry_id), env=ORDERED_ENV).lines() == ["replayed 1"]
    accept(redis_server, [message("a", 3)])

    expected = [("webhook", "a-002"), ("replay", "a-000"), ("webhook", "a-003")]
    assert described(waiting_envelopes(redis_conn)) == expected
    assert queued_functions(redis_conn) == [keys.DRAIN_FUNCTION]
    assert DeadLetterStore(redis_conn).size() == 0
    drain(**ORDERED)
    order = seen_by_handler(redis_conn)
    assert order[("a", "flaky")] == [1, 2, 0, 3]
    assert order[("a", "record")] == [0, 1, 2, 3]  # the replay re-runs only the handler that failed


def test_a_replay_cannot_overtake_its_held_chat(
    redis_server: LocalRedis, redis_conn: Redis, drain: DrainFn, cli: Cli
) -> None:
    """a-1 waits for its retry (long backoff, no scheduler): the replayed a-0 queues behind it."""
    accept(redis_server, [message("a", 0, **{"raise": 99})])
    drain(**ORDERED)
    [letter] = DeadLetterStore(redis_conn).entries()
    accept(redis_server, [message("a", 1, **{"raise": 1})])
    drain(**ORDERED, retry_backoff=[3600.0])

    assert cli("dlq", "replay", str(letter.entry_id), env=ORDERED_ENV).code == 0
    NotificationQueue(redis_conn).enqueue_drain(0)  # the scheduled drain waits for a-1's retry time
    drain(**ORDERED, retry_backoff=[3600.0])

    chat = partitions.chat_key(orjson.loads(message("a", 0)))
    parked = redis_conn.lrange(keys.partition_parked_key(0, chat), 0, -1)
    assert described([Envelope.decode(raw) for raw in parked]) == [("webhook", "a-001"), ("replay", "a-000")]
    assert seen_by_handler(redis_conn)[("a", "flaky")] == []


def test_the_ingress_and_the_other_producers_write_the_same_entry(
    redis_server: LocalRedis, redis_conn: Redis
) -> None:
    envelope = Envelope.of_bytes(chat_message("a", 0), "webhook")

    async def ingress() -> None:
        connection = AsyncRedis.from_url(redis_server.url)
        await PartitionedEnqueuer(connection, PARTITIONS).enqueue([envelope])
        await connection.aclose()

    asyncio.run(ingress())
    PartitionedQueue(redis_conn, PARTITIONS).enqueue([envelope])

    [(_, first), (_, second)] = partition_stream(redis_conn, partition_of("a"))
    assert first == second == {ENVELOPE_FIELD: envelope.encode()}
    assert redis_conn.exists(keys.partition_scheduled_key(partition_of("a")))


def test_a_transaction_holds_one_partition(redis_conn: Redis) -> None:
    queue = PartitionedQueue(redis_conn, PARTITIONS)
    envelopes = [
        Envelope.of_bytes(chat_message(chat, seq), "reconcile") for seq in range(2) for chat in CHATS
    ]

    groups = [described(group) for group in queue.split(envelopes, lambda envelope: envelope)]

    assert sorted(entry for group in groups for entry in group) == sorted(described(envelopes))
    for group in groups:
        assert len({partition_of(id_message[0]) for _, id_message in group}) == 1
        assert group == [entry for entry in described(envelopes) if entry in group]  # in the order given
    with pytest.raises(ValueError, match="one partition"):
        queue.enqueue(envelopes, redis_conn.pipeline())
