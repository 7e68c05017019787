"""Two shells replaying one dead letter *at the same time* (issue 10, defect 9).

``tests/test_exactly_once.py::test_9`` runs the second shell after the first finished, which the existence
check alone handles. Here the second shell runs while the first holds the entry's lock, between its check
and its commit (a checkpoint hook runs it there, no timing): the lock must turn it away.
"""

from __future__ import annotations

import orjson
from redis import Redis

from greenq.core import checkpoints
from greenq.core.contract import Envelope, NotificationQueue, notification_queue
from greenq.core.deadletters.replay import ReplayReport, replay
from greenq.core.deadletters.store import DeadLetterStore
from tests.conftest import DrainFn, load_sample

ROUTER = "tests.support.effects:router"


def test_a_replay_started_while_another_holds_the_entry_is_turned_away(
    redis_conn: Redis, drain: DrainFn
) -> None:
    text = load_sample("incomingMessageReceived__textMessage.json")
    body = {**text, "idMessage": "BOTH", "test": {"raise": 9}}
    NotificationQueue(redis_conn).enqueue([Envelope(body=orjson.dumps(body).decode(), source="webhook")])
    drain(router=ROUTER, max_retries=0)
    [letter] = DeadLetterStore(redis_conn).entries()
    second: list[ReplayReport] = []

    def second_shell(name: str) -> None:
        if name == checkpoints.REPLAY_LOCKED and not second:
            with Redis(connection_pool=redis_conn.connection_pool) as other:
                second.append(replay(other, [letter]))

    checkpoints.install(second_shell)
    try:
        first = replay(redis_conn, [letter])
    finally:
        checkpoints.install(None)

    assert (first.replayed, first.error) == ([letter.entry_id], None)
    assert (second[0].replayed, second[0].missing) == ([], [letter.entry_id])
    assert notification_queue(redis_conn).count == 1
    assert DeadLetterStore(redis_conn).size() == 0
