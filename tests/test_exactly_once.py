"""Exactly once, defect by defect (issue 10): each test reproduces one way the promise broke.

Real redis-server; workers run in-process (``Processor`` / RQ burst workers) or behind the RESP proxy of
``tests.support.redis_proxy``. Effects are counted from ``tests.support.effects.EFFECTS``; outcomes from
greenq's outcome counts. Each test failed on the code before the fix (see RELIABILITY.md).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from functools import partial
from typing import Any, cast

import orjson
import pytest
from redis import Redis
from starlette.testclient import TestClient

from greenq.core import keys
from greenq.core.contract import Envelope, JobsQueue, NotificationQueue, notification_queue
from greenq.core.deadletters.replay import replay
from greenq.core.deadletters.store import DeadLetterStore
from greenq.core.settings import IngressSettings, WorkerSettings
from greenq.ingress.app import create_app
from greenq.local.redis_server import LocalRedis
from greenq.workers.runner import build_runtime
from tests.conftest import TOKEN, DrainFn, load_sample
from tests.support.effects import effects
from tests.support.redis_proxy import Fault, RedisProxy
from tests.support.threads import run_together

ROUTER = "tests.support.effects:router"
TEXT = load_sample("incomingMessageReceived__textMessage.json")
STATE = load_sample("stateInstanceChanged__default.json")
QUOTA = load_sample("quotaExceeded__default.json")


def message(id_message: str, **test: object) -> dict[str, Any]:
    return {**TEXT, "idMessage": id_message, **({"test": test} if test else {})}


def wire(body: dict[str, Any] | str, **fields: Any) -> dict[str, Any]:
    text = body if isinstance(body, str) else orjson.dumps(body).decode()
    return Envelope(body=text, source="webhook", **fields).to_wire()


def outcome_counts(redis: Redis) -> dict[str, int]:
    raw = cast(dict[bytes, bytes], redis.hgetall(keys.OUTCOME_COUNTS))
    return {key.decode(): int(value) for key, value in raw.items() if int(value)}


def effect_counts(redis: Redis) -> Counter[str]:
    return Counter(key for key, _ in effects(redis))


def dead_letters(redis: Redis) -> list[tuple[str, str]]:
    return [(letter.outcome.value, letter.envelope.body[:40]) for letter in DeadLetterStore(redis).entries()]


def failed_jobs(redis: Redis) -> list[str]:
    return list(notification_queue(redis).failed_job_registry.get_job_ids())


@pytest.fixture
def settings(worker_settings: WorkerSettings) -> WorkerSettings:
    return worker_settings.model_copy(update={"router": ROUTER})


# Defect 1: one poison body failed its whole batch.


def nested(levels: int) -> str:
    return "[" * levels + "]" * levels


@pytest.mark.parametrize("levels", [300, 1000], ids=["orjson-cannot-re-encode", "jsonschema-recursion"])
def test_1_a_poison_body_ends_invalid_and_its_neighbours_are_handled(
    redis_conn: Redis, drain: DrainFn, levels: int
) -> None:
    valid_deep = orjson.dumps(STATE)[:-1] + b', "x": ' + nested(levels).encode() + b"}"
    invalid_deep = b'{"typeWebhook": "stateInstanceChanged", "x": ' + nested(levels).encode() + b"}"
    batch = [
        Envelope(body=orjson.dumps(message("BEFORE")).decode(), source="webhook"),
        Envelope(body=valid_deep.decode(), source="webhook"),
        Envelope(body=invalid_deep.decode(), source="webhook"),
        Envelope(body=orjson.dumps(message("AFTER")).decode(), source="webhook"),
    ]
    NotificationQueue(redis_conn).enqueue(batch)

    drain(router=ROUTER)

    assert effect_counts(redis_conn) == {"BEFORE": 2, "AFTER": 2}  # two handlers each, once
    assert outcome_counts(redis_conn) == {"handled": 2, "invalid": 2}
    assert [outcome for outcome, _ in dead_letters(redis_conn)] == ["invalid", "invalid"]
    assert failed_jobs(redis_conn) == []


# Defect 2: concurrent copies of one notification both ran their handlers.


def test_2_two_workers_handling_copies_at_the_same_time_apply_effects_once(
    redis_conn: Redis, settings: WorkerSettings
) -> None:
    body = message("RACE", gate="race")
    url = settings.require_redis_url()
    runtimes = [build_runtime(settings, connection=Redis.from_url(url)) for _ in range(2)]
    errors = run_together([partial(runtime.processor.process_items, [wire(body)]) for runtime in runtimes])

    assert errors == []
    assert effect_counts(redis_conn) == {"RACE": 2}  # record + flaky, once each
    assert outcome_counts(redis_conn) == {"handled": 1, "duplicate": 1}


# Defect 3: re-runs of committed jobs, retries and replays ran handlers again.


def test_3_a_retry_job_that_runs_twice_applies_its_effects_once(redis_conn: Redis, drain: DrainFn) -> None:
    retry = wire(message("RETRY", **{"raise": 1}), attempt=2, pending_handlers=["flaky"])
    queue = NotificationQueue(redis_conn)
    for _ in range(2):  # e.g. a worker died after committing the retry's effects, so RQ ran it again
        queue.rq_queue.enqueue(keys.JOB_FUNCTION, args=([retry],), result_ttl=0)

    drain(router=ROUTER)

    assert effect_counts(redis_conn) == {"RETRY": 1}
    assert outcome_counts(redis_conn) == {"handled": 1}


def test_3_a_job_that_runs_twice_records_each_outcome_once(redis_conn: Redis, drain: DrainFn) -> None:
    batch = [wire(message("TWICE")), wire('{"typeWebhook": "incomingMessageReceived"}'), wire(QUOTA)]
    queue = NotificationQueue(redis_conn)
    for _ in range(2):  # a committed job run again (crash before RQ recorded its success)
        queue.rq_queue.enqueue(keys.JOB_FUNCTION, args=(batch,), result_ttl=0)

    drain(router=ROUTER)

    assert outcome_counts(redis_conn) == {"handled": 2, "invalid": 1}
    assert [outcome for outcome, _ in dead_letters(redis_conn)] == ["invalid"]
    assert effect_counts(redis_conn) == {"TWICE": 2, "": 2}


def test_3_a_delayed_retry_is_scheduled_once_even_if_its_job_runs_twice(
    redis_conn: Redis, drain: DrainFn
) -> None:
    batch = [wire(message("LATER", **{"raise": 1}))]
    queue = NotificationQueue(redis_conn)
    for _ in range(2):
        queue.rq_queue.enqueue(keys.JOB_FUNCTION, args=(batch,), result_ttl=0)

    drain(router=ROUTER, retry_backoff=[30.0])

    scheduled = queue.rq_queue.scheduled_job_registry
    [job_id] = scheduled.get_job_ids()
    [retry] = queue.rq_queue.fetch_job(job_id).args[0]  # type: ignore[union-attr]
    assert (retry["attempt"], retry["pending_handlers"]) == (2, ["flaky"])
    assert effects(redis_conn) == [("LATER", "record")]


def test_3_a_replay_job_that_runs_twice_applies_its_effects_once(redis_conn: Redis, drain: DrainFn) -> None:
    NotificationQueue(redis_conn).enqueue(
        [Envelope(body=orjson.dumps(message("R", **{"raise": 9})).decode(), source="webhook")]
    )
    drain(router=ROUTER, max_retries=0)
    assert effect_counts(redis_conn) == {"R": 1}  # `record` ran; `flaky` failed and was dead-lettered
    [letter] = DeadLetterStore(redis_conn).entries()
    replay(redis_conn, JobsQueue(redis_conn), [letter])
    queue = notification_queue(redis_conn)
    [job] = queue.get_jobs()
    queue.enqueue(keys.JOB_FUNCTION, args=job.args, result_ttl=0)  # the same replay job, run twice

    drain(router=ROUTER, max_retries=0)

    assert effects(redis_conn) == [("R", "record"), ("R", "flaky")]
    assert outcome_counts(redis_conn) == {"failed": 1, "handled": 1}


# Defect 4: redis-py re-sent a whole MULTI/EXEC whose reply was lost.


@pytest.fixture
def proxy(redis_server: LocalRedis) -> Iterator[RedisProxy]:
    relay = RedisProxy("127.0.0.1", redis_server.port)
    yield relay
    relay.close()


def test_4_a_worker_commit_whose_reply_is_lost_is_not_applied_twice(
    redis_conn: Redis, settings: WorkerSettings, redis_server: LocalRedis, proxy: RedisProxy
) -> None:
    proxy.add(Fault("EXEC", "drop"))
    through_proxy = settings.model_copy(update={"redis_url": proxy.url(redis_server.password)})
    runtime = build_runtime(through_proxy)

    runtime.processor.process_items([wire(message("LOST"))])

    assert proxy.counts["EXEC"] >= 2  # the dropped commit, then the attempt that found it applied
    assert effect_counts(redis_conn) == {"LOST": 2}
    assert outcome_counts(redis_conn) == {"handled": 1}


def test_4_an_ingress_write_whose_reply_is_lost_is_503_never_200_with_two_jobs(
    redis_conn: Redis, ingress_settings: IngressSettings, redis_server: LocalRedis, proxy: RedisProxy
) -> None:
    proxy.add(Fault("EXEC", "drop"))
    through_proxy = ingress_settings.model_copy(update={"redis_url": proxy.url(redis_server.password)})
    with TestClient(create_app(through_proxy), client=("127.0.0.1", 40000)) as client:
        status = client.post(
            "/green-api/webhook/", content=orjson.dumps(message("ONCE")), headers={"Authorization": TOKEN}
        ).status_code

    jobs = notification_queue(redis_conn).count
    assert (status, jobs) == (503, 1)  # stored once; GREEN API's resend will be a `duplicate`


# Defect 6: a partly failed EXEC applied the rest and the re-run reported `duplicate`.


def test_6_a_write_refused_inside_exec_dead_letters_the_notification(
    redis_conn: Redis, drain: DrainFn
) -> None:
    from tests.support.effects import WRONG_TYPE_KEY

    redis_conn.set(WRONG_TYPE_KEY, "not a hash")
    NotificationQueue(redis_conn).enqueue(
        [
            Envelope(body=orjson.dumps(message(key, wrongtype=key == "BAD")).decode(), source="webhook")
            for key in ("OK1", "BAD", "OK2")
        ]
    )

    drain(router=ROUTER)

    assert outcome_counts(redis_conn) == {"handled": 2, "failed": 1}
    [letter] = DeadLetterStore(redis_conn).entries()
    assert letter.outcome.value == "failed"
    assert letter.envelope.pending_handlers == ("flaky",)
    assert any("WRONGTYPE" in reason for reason in letter.reasons)
    assert failed_jobs(redis_conn) == []


# Defect 8: identical bodies that are two real events were collapsed.


def test_8_two_identical_quota_notifications_without_timestamp_are_both_handled(
    redis_conn: Redis, drain: DrainFn
) -> None:
    body = {**QUOTA, "test": {"key": "QUOTA"}}
    assert "timestamp" not in body
    queue = NotificationQueue(redis_conn)
    queue.enqueue([Envelope(body=orjson.dumps(body).decode(), source="webhook")])
    drain(router=ROUTER)
    queue.enqueue([Envelope(body=orjson.dumps(body).decode(), source="webhook")])  # a month later

    drain(router=ROUTER)

    assert effect_counts(redis_conn) == {"QUOTA": 4}
    assert outcome_counts(redis_conn) == {"handled": 2}


def test_8_identical_state_changes_are_still_deduplicated(redis_conn: Redis, drain: DrainFn) -> None:
    body = orjson.dumps({**STATE, "test": {"key": "STATE"}}).decode()
    NotificationQueue(redis_conn).enqueue([Envelope(body=body, source="webhook") for _ in range(2)])

    drain(router=ROUTER)

    assert outcome_counts(redis_conn) == {"handled": 1, "duplicate": 1}


# Defect 9: replaying one dead letter from two shells enqueued it twice.


def test_9_two_shells_replaying_the_same_dead_letter_enqueue_it_once(
    redis_conn: Redis, drain: DrainFn
) -> None:
    NotificationQueue(redis_conn).enqueue(
        [Envelope(body=orjson.dumps(message("TWICE", **{"raise": 9})).decode(), source="webhook")]
    )
    drain(router=ROUTER, max_retries=0)
    store = DeadLetterStore(redis_conn)
    first_shell, second_shell = store.entries(), store.entries()  # both listed it before either replayed

    shell = JobsQueue(redis_conn)
    reports = [replay(redis_conn, shell, first_shell), replay(redis_conn, shell, second_shell)]

    assert notification_queue(redis_conn).count == 1
    assert [len(report.replayed) for report in reports] == [1, 0]
    drain(router=ROUTER, max_retries=0)
    assert effects(redis_conn) == [("TWICE", "record"), ("TWICE", "flaky")]
