"""Two shells replaying one dead letter *at the same time* (issue 10, defect 9).

``tests/test_exactly_once.py::test_9`` runs the second shell after the first finished, which the existence
check alone handles. Here the second shell runs while the first holds the entry's lock, between its check
and its commit (a checkpoint hook runs it there, no timing): the lock must turn it away, whether the replay
enqueues an RQ job or (ordered mode) appends to the chat's partition.
"""

from __future__ import annotations

from typing import Literal

import orjson
import pytest
from redis import Redis

from greenq.core import checkpoints, keys
from greenq.core.contract import Envelope, notification_queue, producer_queue
from greenq.core.deadletters.replay import ReplayReport, replay
from greenq.core.deadletters.store import DeadLetterStore
from greenq.core.settings import CommonSettings
from tests.conftest import DrainFn, load_sample
from tests.support.ordering import queued_functions, waiting_envelopes

ROUTER = "tests.support.effects:router"
#: What the RQ queue holds after the replay: the replay's batch job, or its partition's drain.
QUEUED = {"jobs": [keys.JOB_FUNCTION], "partitioned": [keys.DRAIN_FUNCTION]}


@pytest.mark.parametrize("ordering", ["jobs", "partitioned"])
def test_a_replay_started_while_another_holds_the_entry_is_turned_away(
    redis_conn: Redis, drain: DrainFn, ordering: Literal["jobs", "partitioned"]
) -> None:
    settings = CommonSettings(_env_file=None, ordering=ordering, partitions=1)  # type: ignore[call-arg]
    text = load_sample("incomingMessageReceived__textMessage.json")
    body = {**text, "idMessage": "BOTH", "test": {"raise": 9}}
    producer_queue(settings, redis_conn).enqueue(
        [Envelope(body=orjson.dumps(body).decode(), source="webhook")]
    )
    drain(router=ROUTER, max_retries=0, ordering=ordering, partitions=1)
    [letter] = DeadLetterStore(redis_conn).entries()
    second: list[ReplayReport] = []

    def second_shell(name: str) -> None:
        if name == checkpoints.REPLAY_LOCKED and not second:
            with Redis(connection_pool=redis_conn.connection_pool) as other:
                second.append(replay(other, producer_queue(settings, other), [letter]))

    checkpoints.install(second_shell)
    try:
        first = replay(redis_conn, producer_queue(settings, redis_conn), [letter])
    finally:
        checkpoints.install(None)

    assert (first.replayed, first.error) == ([letter.entry_id], None)
    assert (second[0].replayed, second[0].missing) == ([], [letter.entry_id])
    assert notification_queue(redis_conn).count == 1
    assert queued_functions(redis_conn) == QUEUED[ordering]
    assert [envelope.replay_of for envelope in waiting_envelopes(redis_conn)] == [letter.entry_id]
    assert DeadLetterStore(redis_conn).size() == 0
