"""The sender's parts on their own: recognising a sent message in GREEN API's queue and journal, pacing
slots shared by two clients, partition leases, and unsent dead letters (shown and replayed by greenq dlq)."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any, cast

import pytest
from redis import Redis

from greenq.core import keys
from greenq.core.deadletters import DeadLetterStore
from greenq.core.greenapi.client import GreenApiBase
from greenq.core.outbox import ENTRY_FIELD, OutboxEntry, ReplyRecord
from greenq.core.redis_conn import connect_async
from greenq.core.settings import InstanceConfig
from greenq.local.redis_server import LocalRedis
from greenq.sender.leases import Leases
from greenq.sender.ledger import Ledger
from greenq.sender.matching import journaled_ids, queued_ids, same_content
from greenq.sender.pacing import MIN_DELAY_MS, Pacer
from tests.support.processes import run_greenq, subprocess_env, wait_until

CHAT = "79001234567@c.us"
ENTRY = OutboxEntry(
    id="e1",
    instance="1101000001",
    method="sendMessage",
    body={"chatId": CHAT, "message": "hello"},
    created=1000.0,
    handler="tests",
)


def test_the_queue_match_needs_the_same_method_and_body() -> None:
    listing = [
        {"messageID": "A", "type": "sendMessage", "body": {"chatId": CHAT, "message": "other"}},
        {"messageID": "B", "type": "sendPoll", "body": dict(ENTRY.body)},
        {"messageID": "C", "type": "sendMessage", "body": dict(ENTRY.body)},
    ]
    assert queued_ids(ENTRY, listing) == ["C"]


def test_the_journal_match_needs_an_api_send_to_the_chat_since_the_call_with_the_content() -> None:
    sent = {"chatId": CHAT, "sendByApi": True, "timestamp": 1000, "typeMessage": "textMessage"}
    journal = [
        {**sent, "idMessage": "EARLIER", "textMessage": "hello", "timestamp": 900},
        {**sent, "idMessage": "FROM-PHONE", "textMessage": "hello", "sendByApi": False},
        {**sent, "idMessage": "OTHER-CHAT", "textMessage": "hello", "chatId": "1@c.us"},
        {**sent, "idMessage": "OTHER-TEXT", "textMessage": "bye"},
        {**sent, "idMessage": "THIS", "textMessage": "hello"},
    ]
    assert journaled_ids(ENTRY, journal, since=950) == ["THIS"]


@pytest.mark.parametrize(
    ("method", "body", "item", "matches"),
    [
        ("sendFileByUrl", {"urlFile": "u", "fileName": "a.pdf"}, {"fileName": "a.pdf", "caption": ""}, True),
        ("sendFileByUrl", {"urlFile": "u", "fileName": "a.pdf"}, {"fileName": "b.pdf"}, False),
        (
            "sendLocation",
            {"latitude": 1.5, "longitude": 2},
            {"location": {"latitude": 1.5, "longitude": 2.0}},
            True,
        ),
        (
            "sendLocation",
            {"latitude": 1.5, "longitude": 2},
            {"location": {"latitude": 1.5, "longitude": 3}},
            False,
        ),
        (
            "sendContact",
            {"contact": {"phoneContact": 79001}},
            {"contact": {"vcard": "TEL;waid=79001:+79001"}},
            True,
        ),
        (
            "sendContact",
            {"contact": {"phoneContact": 79001}},
            {"contact": {"vcard": "TEL;waid=79002:+79002"}},
            False,
        ),
        ("sendPoll", {"message": "?", "options": []}, {"typeMessage": "pollMessage"}, True),
        ("sendPoll", {"message": "?", "options": []}, {"typeMessage": "textMessage"}, False),
        ("sendUnknown", {}, {"typeMessage": "textMessage"}, False),
    ],
)
def test_each_method_is_recognised_by_what_the_journal_keeps_of_it(
    method: str, body: dict[str, Any], item: dict[str, Any], matches: bool
) -> None:
    assert same_content(method, body, item) is matches


class _Settings:
    """Stands in for an instance's client: only getSettings is used by the pacer."""

    def __init__(self, delay_ms: int) -> None:
        self.instance = InstanceConfig.model_validate(
            {
                "name": "first",
                "apiUrl": "http://127.0.0.1:9",
                "idInstance": "1101000001",
                "apiTokenInstance": "t0k3n" * 10,
            }
        )
        self._delay_ms = delay_ms

    async def get_settings(self) -> dict[str, Any]:
        return {"delaySendMessagesMilliseconds": self._delay_ms}


def test_two_pacers_on_one_instance_never_get_slots_closer_than_the_delay(
    redis_server: LocalRedis, redis_conn: Redis
) -> None:
    """Two replicas (two clients) ask at once; the instance's delay (100 ms, below GREEN API's minimum)
    is raised to 500 ms, and every granted slot is at least that far from the next."""

    async def scenario() -> None:
        api = cast(GreenApiBase, _Settings(delay_ms=100))
        stopping = asyncio.Event()
        first, second = connect_async(redis_server.url, 5), connect_async(redis_server.url, 5)
        async with first, second:
            pacers = [Pacer(first, 300), Pacer(second, 300)]
            granted = await asyncio.gather(*(pacers[n % 2].wait_for_slot(api, stopping) for n in range(6)))
        assert granted == [True] * 6

    asyncio.run(scenario())
    slots = sorted(int(raw) for raw in redis_conn.lrange(keys.send_slots_key("1101000001"), 0, -1))
    assert len(slots) == 6
    assert all(later - earlier >= MIN_DELAY_MS for earlier, later in itertools.pairwise(slots))


def test_a_lease_is_exclusive_until_it_expires_and_the_share_follows_the_live_replicas(
    redis_server: LocalRedis, redis_conn: Redis
) -> None:
    async def scenario() -> None:
        first_redis, second_redis = connect_async(redis_server.url, 5), connect_async(redis_server.url, 5)
        async with first_redis, second_redis:
            first, second = Leases(first_redis, 4, 30), Leases(second_redis, 4, 30)
            assert await first.fair_share() == 4
            assert await first.acquire(0)
            assert not await second.acquire(0)
            assert not await second.renew(0)
            await second.release(0)
            assert await first.holds(0)
            assert await first.renew(0)
            assert await second.fair_share() == 2
            redis_conn.pexpire(keys.outbox_lease_key(0), 1)  # the holder died: its lease runs out
            wait_until(lambda: not redis_conn.exists(keys.outbox_lease_key(0)), 5, "the lease to expire")
            assert await second.acquire(0)
            assert not await first.renew(0)
            await first.leave()
            assert await second.fair_share() == 4

    asyncio.run(scenario())


def test_an_unsent_entry_shows_in_greenq_dlq_and_replays_onto_its_outbox_stream(
    redis_server: LocalRedis, redis_conn: Redis
) -> None:
    stream = keys.outbox_stream_key(2)
    redis_conn.xgroup_create(stream, keys.SEND_GROUP, id="0", mkstream=True)
    stream_id = cast(bytes, redis_conn.xadd(stream, ENTRY.encode()))  # type: ignore[arg-type]
    redis_conn.xreadgroup(keys.SEND_GROUP, keys.SEND_CONSUMER, {stream: ">"})

    async def settle() -> None:
        async with connect_async(redis_server.url, 5) as redis:
            reason = "sendMessage of instance 'first' answered HTTP 400"
            await Ledger(redis, "me", 60).settle_dead(
                2, stream_id, ENTRY.encode()[ENTRY_FIELD], ENTRY, reason
            )

    asyncio.run(settle())
    assert redis_conn.xlen(stream) == 0
    assert redis_conn.xpending(stream, keys.SEND_GROUP)["pending"] == 0
    record = ReplyRecord.decode(cast(bytes | None, redis_conn.get(keys.reply_key(ENTRY.id))))
    assert record is not None
    assert record.state == "dead"
    assert "HTTP 400" in (record.error or "")
    [letter] = DeadLetterStore(redis_conn).entries()
    assert (letter.outcome.value, letter.type_webhook, letter.partition) == ("unsent", "sendMessage", 2)

    env = subprocess_env(redis_server)
    listed = run_greenq(["dlq", "list"], env)
    assert listed.returncode == 0
    assert "unsent" in listed.stdout
    assert "sendMessage" in listed.stdout
    replayed = run_greenq(["dlq", "replay", "--all"], env)
    assert replayed.returncode == 0, replayed.stderr
    assert DeadLetterStore(redis_conn).size() == 0
    [(_, values)] = cast(list[tuple[bytes, dict[bytes, bytes]]], redis_conn.xrange(stream))
    assert OutboxEntry.decode(values) == ENTRY
