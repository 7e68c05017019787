"""The README's "Writing a bot" example, run as written by a real worker over a whole conversation: its
replies land in the outbox in the chat's order, its state moves greeting -> menu -> confirm -> cleared."""

from __future__ import annotations

import re
from pathlib import Path
from typing import cast

import orjson
import pytest
from redis import Redis

from greenq.core import keys, partitions
from greenq.core.contract import Envelope, NotificationQueue
from greenq.core.outbox import OutboxEntry
from greenq.core.settings import WorkerSettings
from tests.conftest import DrainFn
from tests.support.ordering import chat_key, message

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def said(chat: str, seq: int, text: str) -> bytes:
    data = orjson.loads(message(chat, seq))
    data["messageData"]["textMessageData"]["textMessage"] = text
    return orjson.dumps(data)


def test_the_readme_bot_takes_an_order(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    redis_conn: Redis,
    drain: DrainFn,
    worker_settings: WorkerSettings,
) -> None:
    [example] = re.findall(r"```python\n(# mybot/handlers.py.*?)```", README, re.DOTALL)
    (tmp_path / "readme_bot.py").write_text(example, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    for seq, text in enumerate(["hello", "Pizza", "yes"]):
        NotificationQueue(redis_conn).enqueue([Envelope.of_bytes(said("a", seq, text), "webhook")])
        drain(router="readme_bot:router")
    partition = partitions.partition_of(chat_key("a"), worker_settings.partitions)
    raw = cast(list[tuple[bytes, dict[bytes, bytes]]], redis_conn.xrange(keys.outbox_stream_key(partition)))
    entries = [OutboxEntry.decode(fields) for _, fields in raw]
    assert [(entry.method, entry.body.get("message") or entry.body.get("body")) for entry in entries] == [
        ("sendMessage", "Hi! What would you like?"),
        ("sendInteractiveButtonsReply", "Our menu"),
        ("sendMessage", "Pizza, right? (yes/no)"),
        ("sendMessage", "Ordered, thank you!"),
    ]
    assert entries[2].body["quotedMessageId"] == "a-001"
    assert redis_conn.lrange("orders", 0, -1) == [b"Pizza"]
    assert redis_conn.hget("order-replies", "a@c.us") == entries[3].id.encode()
    assert not redis_conn.exists(keys.chat_state_key(chat_key("a"), partition))  # the conversation is over
