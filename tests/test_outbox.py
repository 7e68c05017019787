"""The outbox, worker side (``ctx.reply``/``ctx.send``, README: Writing a bot), with a real Redis and real
workers in jobs and ordered mode: every kind of message becomes its GREEN API call in the handled
notification's partition stream with a ``queued`` reply record, and each is recorded exactly once however
its batch is retried, re-run, re-decided or crashed. Handlers: ``tests.support.reply_bot``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import cast

import orjson
import pytest
from prometheus_client import CollectorRegistry
from redis import Redis

from greenq.core import checkpoints, keys, partitions
from greenq.core.contract import Envelope, NotificationQueue
from greenq.core.deadletters.store import DeadLetterStore
from greenq.core.outbox import OutboxEntry, ReplyRecord, outbox_id
from greenq.core.settings import WorkerSettings
from greenq.local.redis_server import LocalRedis
from greenq.workers.drain import PartitionDrain
from greenq.workers.handlers.replies import with_reply_statuses
from greenq.workers.metrics import WorkerMetrics
from greenq.workers.processing import Processor
from greenq.workers.router import load_router
from greenq.workers.runner import build_runtime
from greenq.workers.sending import NoChatToSend, Origin, Outbox, Sends
from greenq.workers.validation import NotificationValidator
from tests.conftest import DrainFn, load_sample
from tests.support.crash import crash_once_at
from tests.support.crash_workers import doomed_then_rescued, worker_env
from tests.support.modes import MODES, PARTITIONS, send
from tests.support.ordering import accept, chat_key, message
from tests.support.processes import poll
from tests.support.redis_proxy import Fault, RedisProxy
from tests.support.reply_bot import CALLS
from tests.support.threads import run_together

REPLIER = "tests.support.reply_bot:replier"
Entries = list[tuple[bytes, dict[bytes, bytes]]]
KINDS = ["file", "location", "contact", "poll", "buttons", "other_chat"]


def partition_count(mode: str, settings: WorkerSettings) -> int:
    return PARTITIONS if mode == "partitioned" else settings.partitions


def outbox(redis: Redis, count: int) -> list[tuple[int, OutboxEntry]]:
    """Every recorded entry with its stream's partition, each stream oldest first."""
    return [
        (partition, OutboxEntry.decode(fields))
        for partition in range(count)
        for _, fields in cast(Entries, redis.xrange(keys.outbox_stream_key(partition)))
    ]


def texts(redis: Redis, count: int) -> list[str]:
    return [entry.body["message"] for _, entry in outbox(redis, count) if entry.method == "sendMessage"]


def assert_recorded_once(redis: Redis, count: int, expected: set[str]) -> None:
    recorded = Counter(texts(redis, count))
    assert set(recorded) == expected
    assert set(recorded.values()) == {1}, recorded
    ids = [entry.id for _, entry in outbox(redis, count)]
    assert len(set(ids)) == len(ids)
    for entry_id in ids:
        record = ReplyRecord.decode(redis.get(keys.reply_key(entry_id)))  # type: ignore[arg-type]
        assert record is not None
        assert (record.state, record.history) == ("queued", ("queued",))


@pytest.mark.parametrize("mode", MODES)
def test_each_kind_becomes_its_green_api_call_in_the_notification_s_partition(
    redis_server: LocalRedis, redis_conn: Redis, drain: DrainFn, worker_settings: WorkerSettings, mode: str
) -> None:
    send(redis_server, redis_conn, mode, [message("a", 0, kinds=KINDS)])
    drain(router=REPLIER, reply_ttl_seconds=3600, **MODES[mode])
    count = partition_count(mode, worker_settings)
    entries = outbox(redis_conn, count)
    expected_partition = partitions.partition_of(chat_key("a"), count)
    assert {partition for partition, _ in entries} == {expected_partition}  # "other_chat" too
    assert [(entry.method, entry.body) for _, entry in entries] == [
        ("sendMessage", {"chatId": "a@c.us", "message": "echo a-000", "quotedMessageId": "a-000"}),
        ("sendFileByUrl", {"chatId": "a@c.us", "urlFile": "https://files.example/menu.pdf",
                           "fileName": "menu.pdf", "caption": "our menu"}),
        ("sendLocation", {"chatId": "a@c.us", "latitude": 55.75, "longitude": 37.62,
                          "nameLocation": "shop", "address": "Main st 1"}),
        ("sendContact", {"chatId": "a@c.us",
                         "contact": {"phoneContact": 79001234567, "firstName": "Ann", "company": "Shop"}}),
        ("sendPoll", {"chatId": "a@c.us", "message": "Which?",
                      "options": [{"optionName": "tea"}, {"optionName": "coffee"}], "multipleAnswers": True}),
        ("sendInteractiveButtonsReply", {"chatId": "a@c.us", "body": "Menu", "header": "Hi",
                                         "footer": "pick one",
                                         "buttons": [{"buttonId": "1", "buttonText": "Pizza"},
                                                     {"buttonId": "2", "buttonText": "Soup"}]}),
        ("sendMessage", {"chatId": "70000000001@c.us", "message": "to the boss"}),
        ("sendMessage", {"chatId": "a@c.us", "message": "later a-000"}),
    ]  # fmt: skip
    instance = str(orjson.loads(message("a", 0))["instanceData"]["idInstance"])
    assert {(entry.instance, entry.reply_to) for _, entry in entries} == {(instance, "a-000")}
    assert [entry.handler for _, entry in entries] == ["answer"] * 7 + ["later"]
    for _, entry in entries:
        assert 0 < redis_conn.ttl(keys.reply_key(entry.id)) <= 3600
    assert_recorded_once(redis_conn, count, {"echo a-000", "to the boss", "later a-000"})


@pytest.mark.parametrize("mode", MODES)
def test_a_retry_re_runs_only_the_failed_handler_and_records_each_send_once(
    redis_server: LocalRedis, redis_conn: Redis, drain: DrainFn, worker_settings: WorkerSettings, mode: str
) -> None:
    """``answer`` sends, then ``later`` asks for a message and fails: its message is dropped with it, and
    its retry (``later`` alone) sends once."""
    bodies = [message("a", 0), message("a", 1, **{"raise": 1}), message("a", 2)]
    send(redis_server, redis_conn, mode, bodies)
    drain(router=REPLIER, max_retries=2, **MODES[mode])
    count = partition_count(mode, worker_settings)
    expected = {f"{kind} a-{seq:03d}" for kind in ("echo", "later") for seq in range(3)}
    assert_recorded_once(redis_conn, count, expected)
    assert int(redis_conn.get(CALLS) or 0) == 3  # the retry did not run ``answer`` again
    if mode == "partitioned":  # one chat's replies are recorded in its order, the retry before its successors
        in_order = [f"{kind} a-{seq:03d}" for seq in range(3) for kind in ("echo", "later")]
        assert texts(redis_conn, count) == in_order


@pytest.fixture
def proxy(redis_server: LocalRedis) -> Iterator[RedisProxy]:
    relay = RedisProxy("127.0.0.1", redis_server.port)
    yield relay
    relay.close()


def proxied_processor(settings: WorkerSettings, url: str) -> tuple[Processor, Redis]:
    validator = NotificationValidator()
    metrics = WorkerMetrics.create(CollectorRegistry(), validator.known_webhook_types)
    connection = Redis.from_url(url, socket_timeout=5)
    return Processor(settings, connection, load_router(settings.router), validator, metrics), connection


@pytest.mark.parametrize("mode", MODES)
def test_a_commit_whose_exec_reply_is_lost_records_its_sends_once(
    redis_server: LocalRedis,
    redis_conn: Redis,
    worker_settings: WorkerSettings,
    proxy: RedisProxy,
    mode: str,
) -> None:
    settings = worker_settings.model_copy(update={"router": REPLIER, **MODES[mode]})
    fault = proxy.add(Fault("EXEC", "drop"))
    processor, connection = proxied_processor(settings, proxy.url(redis_server.password))
    bodies = [message("a", 0), message("b", 0)]
    if mode == "partitioned":
        accept(redis_server, bodies, flush=2, count=PARTITIONS)
        drain = PartitionDrain(processor, connection, PARTITIONS)
        for partition in range(PARTITIONS):
            while drain.drain(partition, "test-drain"):
                pass
    else:
        processor.process_items([Envelope.of_bytes(body, "webhook").to_wire() for body in bodies])
    assert fault.fired.is_set()
    if mode == "jobs":  # the lost commit, then the attempt that found it applied (ordered mode reads its
        assert proxy.counts["EXEC"] >= 2  # batch again and finds its entries acknowledged: nothing to commit)
    count = partition_count(mode, settings)
    assert_recorded_once(redis_conn, count, {"echo a-000", "later a-000", "echo b-000", "later b-000"})


@pytest.mark.parametrize("mode", MODES)
def test_a_commit_refused_by_a_watch_conflict_is_decided_again_and_records_once(
    redis_server: LocalRedis, redis_conn: Redis, drain: DrainFn, worker_settings: WorkerSettings, mode: str
) -> None:
    """Once the handlers ran, another client touches the chat's (watched) state key and leaves it as it
    was: EXEC is refused, the batch is decided again (``answer`` runs twice) and its sends recorded once."""
    count = partition_count(mode, worker_settings)
    watched = keys.chat_state_key(chat_key("a"), partitions.partition_of(chat_key("a"), count))
    touched: list[str] = []

    def touch(name: str) -> None:
        if name == checkpoints.HANDLERS_RAN and not touched:
            touched.append(name)
            redis_conn.set(watched, "touch")
            redis_conn.delete(watched)

    send(redis_server, redis_conn, mode, [message("a", 0)])
    checkpoints.install(touch)
    try:
        drain(router=REPLIER, **MODES[mode])
    finally:
        checkpoints.install(None)
    assert touched
    assert int(redis_conn.get(CALLS) or 0) == 2
    assert_recorded_once(redis_conn, count, {"echo a-000", "later a-000"})


@pytest.mark.parametrize("same_notification", [True, False], ids=["copies", "one-chat"])
def test_two_workers_deciding_at_once_record_each_send_once(
    redis_conn: Redis, worker_settings: WorkerSettings, same_notification: bool
) -> None:
    """Jobs mode. Copies of one notification: the claim's WATCH refuses the loser, whose re-decision finds
    the unit committed. Two notifications of one chat: both read n=0 and the chat state's WATCH refuses
    the second commit, whose batch is decided again (``answer`` runs a third time) and sends once."""
    settings = worker_settings.model_copy(update={"router": REPLIER})
    url = settings.require_redis_url()
    runtimes = [build_runtime(settings, connection=Redis.from_url(url)) for _ in range(2)]
    seqs = [0, 0] if same_notification else [0, 1]
    wire = {seq: Envelope.of_bytes(message("a", seq, gate="race"), "webhook").to_wire() for seq in set(seqs)}
    pairs = zip(runtimes, seqs, strict=True)
    calls = [partial(runtime.processor.process_items, [wire[seq]]) for runtime, seq in pairs]
    assert run_together(calls) == []
    sent = {f"{kind} a-{seq:03d}" for kind in ("echo", "later") for seq in set(seqs)}
    assert_recorded_once(redis_conn, settings.partitions, sent)
    assert int(redis_conn.get(CALLS) or 0) == (2 if same_notification else 3)


def test_a_crash_before_the_ordered_commit_records_the_sends_once(
    redis_server: LocalRedis, redis_conn: Redis, drain: DrainFn
) -> None:
    bodies = [message(chat, seq) for seq in range(3) for chat in "ab"]
    with crash_once_at(checkpoints.HANDLERS_RAN) as crashed:
        send(redis_server, redis_conn, "partitioned", bodies)
        drain(router=REPLIER, **MODES["partitioned"])
    assert crashed
    expected = {f"{kind} {chat}-{seq:03d}" for kind in ("echo", "later") for chat in "ab" for seq in range(3)}
    assert_recorded_once(redis_conn, PARTITIONS, expected)


def test_a_notification_without_a_chat_cannot_be_replied_to(redis_conn: Redis, drain: DrainFn) -> None:
    body = orjson.dumps(load_sample("stateInstanceChanged__default.json"))
    NotificationQueue(redis_conn).enqueue([Envelope.of_bytes(body, "webhook")])
    drain(router=REPLIER, max_retries=0)
    letters = list(DeadLetterStore(redis_conn).entries())
    assert [letter.outcome.value for letter in letters] == ["failed"]
    assert "handler orphan raised NoChatToSend" in letters[0].reasons[0]
    assert outbox(redis_conn, 16) == []


@pytest.mark.slow
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "point", [checkpoints.HANDLERS_RAN, checkpoints.COMMITTED, checkpoints.RETRY_SCHEDULED]
)
def test_a_worker_killed_at_each_checkpoint_records_each_send_once(
    redis_server: LocalRedis, redis_conn: Redis, tmp_path: Path, point: str, mode: str
) -> None:
    send(redis_server, redis_conn, mode, [message("a", 0), message("a", 1, **{"raise": 1})])
    marker = tmp_path / "crashed"
    env = worker_env(redis_server, REPLIER, f"{point}:1", marker)
    env.update({f"GREENQ_{name.upper()}": str(value) for name, value in MODES[mode].items()})
    count = PARTITIONS if mode == "partitioned" else 16
    expected = {f"{kind} a-{seq:03d}" for kind in ("echo", "later") for seq in range(2)}
    with doomed_then_rescued(env, marker, point):
        poll(
            lambda: set(texts(redis_conn, count)) >= expected and not redis_conn.keys("rq:job:*"),
            90,
            "the rescuer to finish the work",
        )
    assert_recorded_once(redis_conn, count, expected)


def test_entry_ids_follow_the_unit_the_handler_and_the_ordinal() -> None:
    """A re-decided unit asks for the same ids; another unit, handler or ordinal for other ones."""
    ids = {outbox_id(unit, handler, n) for unit in ("u1", "u2") for handler in ("h1", "h2") for n in (0, 1)}
    assert len(ids) == 8
    assert outbox_id("u1", "h1", 0) == outbox_id("u1", "h1", 0)


def test_the_built_in_status_route_follows_the_user_s_routes_once() -> None:
    router = load_router(REPLIER)
    combined = with_reply_statuses(router)
    names = [route.name for route in combined.routes]
    assert names[: len(router.routes)] == [route.name for route in router.routes]
    assert names[-1] == "greenq.reply_status"
    assert [route.name for route in with_reply_statuses(combined).routes] == names


def offline_sends(chat: str | None = "a@c.us", id_message: str | None = "m1") -> Sends:
    """``ctx.send`` on a buffer that is never sent (port 1: nothing listens), for argument checks."""
    origin = Origin("unit", "h", 0, "1101000002", chat, id_message)
    return Sends(Outbox(Redis(host="127.0.0.1", port=1).pipeline(transaction=False), origin, 60))


@pytest.mark.parametrize(
    ("call", "complaint"),
    [
        (lambda s: s.text(""), "non-empty"),
        (lambda s: s.text("x" * 20_001), "longer than"),
        (lambda s: s.text("hi", chat="someone"), "chatId"),
        (lambda s: s.file_by_url("ftp://files.example/a.pdf", "a.pdf"), "http"),
        (lambda s: s.file_by_url("https://files.example/a", "noextension"), "extension"),
        (lambda s: s.location(91, 0), "between"),
        (lambda s: s.location(0, float("nan")), "number"),
        (lambda s: s.contact(-5), "positive"),
        (lambda s: s.poll("q", ["only"]), "2 to 12"),
        (lambda s: s.poll("q", ["same", "same"]), "differ"),
        (lambda s: s.buttons("b", []), "1 to 3"),
        (lambda s: s.buttons("b", [("1", "x" * 26)]), "longer than 25"),
        (lambda s: s.buttons("b", [("1", "a"), ("1", "b")]), "differ"),
    ],
)
def test_a_bad_argument_raises_value_error_in_the_handler(
    call: Callable[[Sends], str], complaint: str
) -> None:
    with pytest.raises(ValueError, match=complaint):
        call(offline_sends())


def test_reply_needs_a_chat_and_quote_needs_a_message() -> None:
    with pytest.raises(NoChatToSend, match="chat"):
        offline_sends(chat=None).reply("hi")
    with pytest.raises(NoChatToSend, match="idMessage"):
        offline_sends(id_message=None).reply("hi", quote=True)
    sends = offline_sends()
    first, second = sends.reply("hi"), sends.text("again")
    assert (first, second) == (outbox_id("unit", "h", 0), outbox_id("unit", "h", 1))
