"""The example bot (``examples/order_bot.py``) through the whole local pipeline, as README "Writing a bot"
runs it: ``greenq up --simulator --router examples.order_bot:router``.

Two people talk to the bot at once through the simulated instance (push mode: simulator -> nginx -> ingress ->
Redis -> workers -> outbox -> ``greenq send`` -> the simulator's outgoing queue). Each waits for the bot's
answers before writing again, as people do. The replies each chat gets, their order, the chat's state in
Redis and the statuses GREEN API reported for the replies are checked from outside.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import orjson
import pytest
from redis import Redis

from greenq.core import keys, outbox, partitions
from greenq.local.procs import free_port
from greenq.local.up import LocalPipeline, UpOptions
from greenq.simulator.control import SimulatorControl
from tests.support.processes import poll

ALICE = "79001110001@c.us"
BOB = "79002220002@c.us"
PARTITIONS = 4


@pytest.fixture
def bot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalPipeline]:
    monkeypatch.delenv("GREENQ_TOKENS", raising=False)
    options = UpOptions(
        ingress=1,
        workers=2,
        port=free_port(),
        data_dir=tmp_path,
        log_dir=tmp_path / "logs",
        router="examples.order_bot:router",
        simulator=True,
        child_settings=(("GREENQ_ORDERING", "partitioned"), ("GREENQ_PARTITIONS", str(PARTITIONS))),
    )
    local = LocalPipeline(options, out=io.StringIO())
    try:
        local.start()
        yield local
    finally:
        local.stop()


class Person:
    """One chat with the bot: writes, then waits (bounded) for the number of answers it expects."""

    def __init__(self, control: SimulatorControl, instance: int, chat: str) -> None:
        self.control, self.instance, self.chat = control, instance, chat
        self.received: list[dict[str, Any]] = []

    def mine(self) -> list[dict[str, Any]]:
        sent = self.control.sent(self.instance)
        return [message for message in sent if message["body"]["chatId"] == self.chat]

    def write(self, text: str) -> None:
        self.control.incoming(self.instance, self.chat, text)

    def expect(self, count: int) -> list[dict[str, Any]]:
        """The next ``count`` messages the bot sent to this chat."""
        wanted = len(self.received) + count
        poll(lambda: len(self.mine()) >= wanted, timeout=60, what=f"{wanted} replies to {self.chat}")
        new = self.mine()[len(self.received) :]
        self.received.extend(new)
        return new


def text_of(message: dict[str, Any]) -> str:
    body = message["body"]
    return str(body.get("message") or body.get("body"))


@pytest.fixture
def control(bot: LocalPipeline) -> Iterator[SimulatorControl]:
    assert bot.simulated is not None
    client = SimulatorControl(bot.simulated.url)
    yield client
    client.close()


@pytest.fixture
def redis(bot: LocalPipeline) -> Iterator[Redis]:
    assert bot.redis is not None
    client = Redis.from_url(bot.redis.url)
    yield client
    client.close()


def test_two_people_order_at_once_and_each_gets_every_reply_once_in_order(
    bot: LocalPipeline, control: SimulatorControl, redis: Redis
) -> None:
    assert bot.simulated is not None
    alice = Person(control, bot.simulated.id_instance, ALICE)
    bob = Person(control, bot.simulated.id_instance, BOB)

    alice.write("hi")
    bob.write("Hello")
    greeting, menu = alice.expect(2)
    assert text_of(greeting).startswith("Hi! I take orders")
    assert menu["type"] == "sendInteractiveButtonsReply"
    assert [b["buttonId"] for b in menu["body"]["buttons"]] == ["pizza", "salad", "soup"]
    assert [m["type"] for m in bob.expect(2)] == ["sendMessage", "sendInteractiveButtonsReply"]

    alice.write("Pizza 12.00")  # the title of the button she chose
    bob.write("cancel")
    assert text_of(alice.expect(1)[0]) == "How many Pizza? (1-20)"
    assert text_of(bob.expect(1)[0]).startswith("Order cancelled")

    alice.write("two")
    assert text_of(alice.expect(1)[0]) == "Please answer with a number from 1 to 20."
    alice.write("2")
    (confirm,) = alice.expect(1)
    assert text_of(confirm) == "2 x Pizza, 24.00 in total. Confirm?"
    alice.write("Yes")
    assert text_of(alice.expect(1)[0]).startswith("Order confirmed: 2 x Pizza.")

    assert chat_state(redis, bot.simulated.id_instance, ALICE) == {"name": "", "data": {"orders": 1}}
    assert chat_state(redis, bot.simulated.id_instance, BOB) is None
    # Every reply went out once (the simulator's log holds each chat's messages once, in the bot's order),
    # and the statuses GREEN API reported came back through the pipeline to the reply records.
    assert len({m["idMessage"] for m in alice.mine() + bob.mine()}) == len(alice.received) + len(bob.received)
    poll(
        lambda: reply_status(redis, alice.received[-1]["idMessage"]) == "read",
        timeout=60,
        what="the last reply's read status",
    )


def chat_state(redis: Redis, instance: int, chat: str) -> Any:
    key = partitions.chat_key({"instanceData": {"idInstance": instance}, "senderData": {"chatId": chat}})
    raw = redis.get(keys.chat_state_key(key, partitions.partition_of(key, PARTITIONS)))
    return None if raw is None else orjson.loads(raw)


def reply_status(redis: Redis, id_message: str) -> str | None:
    """The status the workers recorded from outgoingMessageStatus for the reply sent as ``id_message``, once
    the sender has tied that idMessage to the reply's outbox entry (whose record says ``sent``)."""
    fields = cast(dict[bytes, bytes], redis.hgetall(keys.reply_id_key(id_message)))
    entry = fields.get(outbox.STATUS_ENTRY.encode())
    if entry is None:
        return None
    record = outbox.ReplyRecord.decode(cast(bytes | None, redis.get(keys.reply_key(entry.decode()))))
    assert record is not None
    assert record.state == "sent"
    assert record.id_message == id_message
    status = fields.get(outbox.STATUS_FIELD.encode())
    return None if status is None else status.decode()
