"""Per-chat state (``ctx.state``, README: Writing a bot) with a real Redis and real RQ burst workers, in jobs
and ordered mode: it persists across batches and workers, a batch's notifications of one chat see each
other in order, a handler retry or a crash at each checkpoint applies a change exactly once, two workers
racing on one chat lose no update, the router's ``state=`` filter routes by it, and it expires.
Handlers: ``tests.support.state_bot``.
"""

from __future__ import annotations

from collections import Counter
from functools import partial
from pathlib import Path
from typing import Any

import orjson
import pytest
from redis import Redis

from greenq.core import checkpoints, keys, partitions
from greenq.core.contract import Envelope
from greenq.core.settings import WorkerSettings
from greenq.local.redis_server import LocalRedis
from greenq.workers.reading import Reader
from greenq.workers.results import Valid
from greenq.workers.runner import build_runtime
from greenq.workers.state import NO_STATE, ChatState, ChatStateDisabled, ChatStates
from greenq.workers.validation import NotificationValidator
from tests.conftest import DrainFn
from tests.support.crash import crash_once_at
from tests.support.crash_workers import doomed_then_rescued, worker_env
from tests.support.modes import MODES, PARTITIONS, send
from tests.support.ordering import chat_key, interleaved, message
from tests.support.processes import poll
from tests.support.state_bot import seen
from tests.support.threads import run_together

COUNTER = "tests.support.state_bot:counter"
FSM = "tests.support.state_bot:fsm"
DEFAULT_PARTITIONS: int = WorkerSettings.model_fields["partitions"].default


def state_key(chat: str, mode: str) -> str:
    key = chat_key(chat)
    count = PARTITIONS if mode == "partitioned" else DEFAULT_PARTITIONS
    return keys.chat_state_key(key, partitions.partition_of(key, count))


def stored(redis: Redis, chat: str, mode: str = "jobs") -> Any:
    raw = redis.get(state_key(chat, mode))
    return None if raw is None else orjson.loads(raw)


def counts_of(redis: Redis, chat: str) -> list[tuple[str, str]]:
    return [(key, value) for key, value in seen(redis) if key.startswith(f"{chat}-")]


def text_message(chat: str, seq: int, text: str) -> bytes:
    data = orjson.loads(message(chat, seq))
    data["messageData"]["textMessageData"]["textMessage"] = text
    return orjson.dumps(data)


def test_the_fsm_helper_sets_updates_and_clears() -> None:
    state = ChatState(None)
    assert (state.name, dict(state.data), state.document()) == (NO_STATE, {}, None)
    state.set("menu", page=1)
    state.update(choice="pizza")
    assert state.document() == {"name": "menu", "data": {"page": 1, "choice": "pizza"}}
    state.set("confirm")  # a new state starts with only its own data
    assert state.document() == {"name": "confirm", "data": {}}
    state.clear()
    assert state.document() is None
    assert state.changed
    with pytest.raises(TypeError):  # JSON only: it fails in the handler, which is then retried
        state.update(when=object())


@pytest.mark.parametrize("chat_state", [True, False])
def test_only_a_router_that_keeps_chat_state_reads_it(chat_state: bool) -> None:
    reader = Reader(NotificationValidator(), 0, DEFAULT_PARTITIONS, chat_state)
    read = reader.read(Envelope.of_bytes(message("a", 0), "webhook").to_wire(), "test")
    assert isinstance(read, Valid)
    assert read.state_key == (state_key("a", "jobs") if chat_state else None)
    handle = ChatStates({}).open(read.state_key)
    if chat_state:
        handle.set("menu")
    else:
        with pytest.raises(ChatStateDisabled):
            handle.set("menu")


@pytest.mark.parametrize("mode", MODES)
def test_state_persists_across_batches_and_workers_with_its_ttl(
    redis_server: LocalRedis, redis_conn: Redis, drain: DrainFn, mode: str
) -> None:
    for seq in range(3):  # each batch handled by a new worker
        send(redis_server, redis_conn, mode, [message("a", seq)])
        drain(router=COUNTER, state_ttl_seconds=600, **MODES[mode])
    assert counts_of(redis_conn, "a") == [("a-000", "1"), ("a-001", "2"), ("a-002", "3")]
    assert stored(redis_conn, "a", mode) == {"name": "", "data": {"n": 3}}
    assert 0 < redis_conn.ttl(state_key("a", mode)) <= 600
    # Under its chat's partition tag in either mode: no transaction spans two partitions.
    count = PARTITIONS if mode == "partitioned" else DEFAULT_PARTITIONS
    partition = partitions.partition_of(chat_key("a"), count)
    assert state_key("a", mode).startswith(f"greenq:{{p{partition}}}:")


@pytest.mark.parametrize("mode", MODES)
def test_state_kept_under_the_older_partition_less_key_moves_with_its_first_change(
    redis_server: LocalRedis, redis_conn: Redis, drain: DrainFn, mode: str
) -> None:
    """Jobs-mode workers before ordered-by-default kept ``greenq:state:<digest>``: after the switch the chat
    goes on from it (not from scratch), and its first change moves it under the partition."""
    older = keys.chat_state_key(chat_key("a"), None)
    redis_conn.set(older, orjson.dumps({"name": "", "data": {"n": 5}}))
    send(redis_server, redis_conn, mode, [message("a", 0)])
    drain(router=COUNTER, **MODES[mode])
    assert counts_of(redis_conn, "a") == [("a-000", "6")]
    assert stored(redis_conn, "a", mode) == {"name": "", "data": {"n": 6}}
    assert not redis_conn.exists(older)


def test_jobs_and_partitioned_workers_share_one_chat_s_state(
    redis_server: LocalRedis, redis_conn: Redis, drain: DrainFn
) -> None:
    """A rolling switch: a batch job (from a producer still in jobs mode) and a partition entry of one chat,
    each run by a worker of the other mode, count on from one document."""
    common = {"router": COUNTER, "partitions": PARTITIONS}
    send(redis_server, redis_conn, "jobs", [message("a", 0)])
    drain(ordering="partitioned", **common)
    send(redis_server, redis_conn, "partitioned", [message("a", 1)])
    drain(ordering="jobs", **common)
    assert counts_of(redis_conn, "a") == [("a-000", "1"), ("a-001", "2")]
    assert stored(redis_conn, "a", "partitioned") == {"name": "", "data": {"n": 2}}


@pytest.mark.parametrize("mode", MODES)
def test_notifications_of_one_chat_in_one_batch_see_each_other_in_order(
    redis_server: LocalRedis, redis_conn: Redis, drain: DrainFn, mode: str
) -> None:
    send(redis_server, redis_conn, mode, interleaved(["a", "b"], 5, {}))
    drain(router=COUNTER, **MODES[mode])
    for chat in "ab":
        assert counts_of(redis_conn, chat) == [(f"{chat}-{seq:03d}", str(seq + 1)) for seq in range(5)]
        assert stored(redis_conn, chat, mode) == {"name": "", "data": {"n": 5}}


@pytest.mark.parametrize("mode", MODES)
def test_a_failed_handler_s_state_change_is_dropped_and_its_retry_applies_it_once(
    redis_server: LocalRedis, redis_conn: Redis, drain: DrainFn, mode: str
) -> None:
    bodies = [message("a", 0), message("a", 1, **{"raise": 1}), message("a", 2)]
    send(redis_server, redis_conn, mode, bodies)
    drain(router=COUNTER, max_retries=2, **MODES[mode])
    counts = counts_of(redis_conn, "a")
    if mode == "partitioned":  # the retried one runs before its successors
        assert counts == [("a-000", "1"), ("a-001", "2"), ("a-002", "3")]
    else:  # jobs mode: the retry is a later job, after the rest of its batch
        assert counts == [("a-000", "1"), ("a-002", "2"), ("a-001", "3")]
    assert stored(redis_conn, "a", mode) == {"name": "", "data": {"n": 3}}


@pytest.mark.parametrize("mode", MODES)
def test_the_state_filter_routes_by_the_chat_s_state(
    redis_server: LocalRedis, redis_conn: Redis, drain: DrainFn, mode: str
) -> None:
    texts = ["hi", "pizza", "yes", "again"]
    bodies = [text_message("a", seq, text) for seq, text in enumerate(texts)]
    for batch in (bodies[:2], bodies[2:3], bodies[3:]):  # within one batch and across batches
        send(redis_server, redis_conn, mode, batch)
        drain(router=FSM, **MODES[mode])
    assert seen(redis_conn) == [
        ("a-000", "greet"),
        ("a-001", "menu"),
        ("a-002", "confirm:pizza"),
        ("a-003", "greet"),  # the confirm step cleared the state
    ]
    assert stored(redis_conn, "a", mode) == {"name": "menu", "data": {}}


def test_a_crash_before_the_ordered_commit_applies_the_state_changes_once(
    redis_server: LocalRedis, redis_conn: Redis, drain: DrainFn
) -> None:
    bodies = interleaved(["a", "b"], 4, {("b", 1): {"raise": 1}})
    with crash_once_at(checkpoints.HANDLERS_RAN) as crashed:
        send(redis_server, redis_conn, "partitioned", bodies)
        drain(router=COUNTER, **MODES["partitioned"])
    assert crashed
    for chat in "ab":
        assert counts_of(redis_conn, chat) == [(f"{chat}-{seq:03d}", str(seq + 1)) for seq in range(4)]
        assert stored(redis_conn, chat, "partitioned") == {"name": "", "data": {"n": 4}}


def test_two_workers_racing_on_one_chat_lose_no_update(
    redis_conn: Redis, worker_settings: WorkerSettings
) -> None:
    """Jobs mode: both read n=0 (the gate holds them); the WATCH on the state key refuses the second
    commit, which is decided again from n=1."""
    settings = worker_settings.model_copy(update={"router": COUNTER})
    url = settings.require_redis_url()
    runtimes = [build_runtime(settings, connection=Redis.from_url(url)) for _ in range(2)]
    wires = [Envelope.of_bytes(message("a", seq, gate="race"), "webhook").to_wire() for seq in range(2)]
    errors = run_together(
        [
            partial(runtime.processor.process_items, [one])
            for runtime, one in zip(runtimes, wires, strict=True)
        ]
    )
    assert errors == []
    assert sorted(value for _, value in counts_of(redis_conn, "a")) == ["1", "2"]
    assert stored(redis_conn, "a") == {"name": "", "data": {"n": 2}}


@pytest.mark.slow
@pytest.mark.parametrize(
    "point", [checkpoints.HANDLERS_RAN, checkpoints.COMMITTED, checkpoints.RETRY_SCHEDULED]
)
def test_a_worker_killed_at_each_checkpoint_applies_each_state_change_once(
    redis_server: LocalRedis,
    redis_conn: Redis,
    tmp_path: Path,
    point: str,
) -> None:
    send(redis_server, redis_conn, "jobs", [message("a", 0), message("a", 1, **{"raise": 1})])
    marker = tmp_path / "crashed"
    with doomed_then_rescued(worker_env(redis_server, COUNTER, f"{point}:1", marker), marker, point):
        poll(
            lambda: len(seen(redis_conn)) >= 2 and not redis_conn.keys("rq:job:*"),
            90,
            "the rescuer to finish the work",
        )
    assert Counter(seen(redis_conn)) == {("a-000", "1"): 1, ("a-001", "2"): 1}
    assert stored(redis_conn, "a") == {"name": "", "data": {"n": 2}}
