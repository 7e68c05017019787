"""Never stall an instance: every body an authenticated sender posts is stored and answered 200.

nginx (rendered from the shipped template) in front of a real ``greenq ingress`` process, a real Redis and a
real RQ burst worker. Each class of body GREEN API should never send, but might, is answered 200 and ends
``invalid`` (or ``too_large``) in the dead letter with its exact bytes and a readable reason, logged at
ERROR and counted. The same bodies without a token are 401 with nothing stored. Past the hard cap nginx
answers 413 and the ingress counts it: the one documented stall.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

import pytest
import requests
from redis import Redis
from rq import Queue

from greenq.core.deadletters.store import DeadLetterStore
from greenq.core.logs import JsonFormatter
from greenq.core.outcomes import Outcome
from greenq.local.nginx_server import LocalNginx, find_nginx
from greenq.local.procs import free_port
from greenq.local.redis_server import LocalRedis
from tests.conftest import TOKEN, DrainFn
from tests.support.ingress import running_ingress
from tests.support.processes import env_for

WEBHOOK: Final = "/green-api/webhook/"
LIMIT: Final = 4096
CAP: Final = 256 * 1024  # over nginx's 64 KiB in-memory body buffer: the at-cap body goes through a temp file
NOTIFICATION: Final = b'{"typeWebhook": "stateInstanceChanged", "pad": "'


def padded(size: int) -> bytes:
    """A notification-looking JSON object of exactly ``size`` bytes."""
    body = NOTIFICATION + b"p" * (size - len(NOTIFICATION) - 2) + b'"}'
    assert len(body) == size
    return body


@dataclass(frozen=True)
class BodyClass:
    name: str
    body: bytes
    outcome: Outcome
    reason: str  # a fragment the dead letter's reason must contain


BODY_CLASSES: Final = [
    BodyClass("array", b'[{"typeWebhook": "incomingCall"}]', Outcome.INVALID, "body is an array, not"),
    BodyClass(
        "invalid UTF-8",
        b'{"typeWebhook": "\xff\xfe"}',
        Outcome.INVALID,
        "not valid UTF-8 (byte 17: invalid start byte)",
    ),
    BodyClass("lone surrogate escape", b'{"text": "\\ud83d"}', Outcome.INVALID, "no low surrogate"),
    BodyClass(
        "nesting too deep", b'{"a": ' + b"[" * 1100 + b"]" * 1100 + b"}", Outcome.INVALID, "depth limit"
    ),
    BodyClass("empty", b"", Outcome.INVALID, "body is empty"),
    BodyClass("blank", b" \r\n\t", Outcome.INVALID, "body is only whitespace"),
    BodyClass("not JSON", b"hello, greenq", Outcome.INVALID, "not valid JSON"),
    BodyClass("null", b"null", Outcome.INVALID, "body is null, not"),
    BodyClass("a JSON string", b'"{}"', Outcome.INVALID, "body is a string, not"),
    BodyClass("UTF-8 BOM", b"\xef\xbb\xbf{}", Outcome.INVALID, "not valid JSON"),
    BodyClass("limit + 1", padded(LIMIT + 1), Outcome.TOO_LARGE, f"4097 bytes is over the {LIMIT}-byte"),
    BodyClass("at the hard cap", padded(CAP), Outcome.TOO_LARGE, "processing limit"),
    BodyClass("past the limit and not UTF-8", b"\x80" * (LIMIT * 2), Outcome.TOO_LARGE, "8192 bytes is over"),
]


@dataclass
class Edge:
    """nginx in front of one ingress process."""

    url: str
    ingress_url: str

    def post(self, body: bytes, token: str | None = TOKEN) -> requests.Response:
        headers = {"Authorization": token} if token else {}
        return requests.post(f"{self.url}{WEBHOOK}", data=body, headers=headers, timeout=30)

    def ingress_count(self, outcome: str) -> float:
        prefix = f'greenq_ingress_requests_total{{outcome="{outcome}"}}'
        for line in requests.get(f"{self.ingress_url}/metrics", timeout=10).text.splitlines():
            if line.startswith(prefix):
                return float(line.rsplit(" ", 1)[1])
        return 0.0


@pytest.fixture(scope="module")
def edge(redis_server: LocalRedis, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Edge]:
    if find_nginx() is None:
        pytest.fail("nginx is required (apt-get install nginx)")
    workdir = tmp_path_factory.mktemp("edge")
    env = env_for(redis_server, GREENQ_MAX_BODY_BYTES=str(LIMIT), GREENQ_BODY_CAP_BYTES=str(CAP))
    with running_ingress(env, workdir / "ingress.log") as (port, _):
        nginx = LocalNginx(workdir / "nginx", free_port(), [f"127.0.0.1:{port}"], CAP, WEBHOOK)
        try:
            nginx.start()
            yield Edge(nginx.url, f"http://127.0.0.1:{port}")
        finally:
            nginx.stop()


def worker_count(registry: Any, outcome: Outcome) -> float:
    return sum(
        float(sample.value)
        for family in registry.collect()
        for sample in family.samples
        if sample.name == "greenq_notifications_total" and sample.labels["outcome"] == outcome.value
    )


@pytest.mark.parametrize("case", BODY_CLASSES, ids=lambda case: case.name)
def test_an_authenticated_body_of_any_class_is_200_and_dead_lettered_with_its_exact_bytes(
    edge: Edge, redis_conn: Redis, drain: DrainFn, caplog: pytest.LogCaptureFixture, case: BodyClass
) -> None:
    response = edge.post(case.body)

    assert response.status_code == 200, response.text
    with caplog.at_level(logging.ERROR, logger="greenq.worker"):
        runtime = drain()
    [letter] = DeadLetterStore(redis_conn).entries()
    assert letter.outcome is case.outcome
    assert letter.envelope.raw_body == case.body
    assert case.reason in letter.reasons[0], letter.reasons
    assert worker_count(runtime.registry, case.outcome) == 1
    [record] = [r for r in caplog.records if r.getMessage() == f"notification {case.outcome.value}"]
    assert record.levelno == logging.ERROR
    line = JsonFormatter().format(record)
    assert len(line) < 4 * 1024, "an oversized body belongs in the dead letter, not in every log line"
    assert case.reason.split(" (")[0] in line


@pytest.mark.parametrize("case", BODY_CLASSES, ids=lambda case: case.name)
def test_the_same_body_without_a_token_is_401_and_nothing_is_stored(
    edge: Edge, redis_conn: Redis, queue: Queue, case: BodyClass
) -> None:
    assert edge.post(case.body, token=None).status_code == 401
    assert edge.post(case.body, token="not-the-token").status_code == 401

    assert queue.count == 0
    assert DeadLetterStore(redis_conn).size() == 0


def test_past_the_hard_cap_nginx_answers_413_and_the_ingress_counts_it(edge: Edge, queue: Queue) -> None:
    before = edge.ingress_count("over_cap")
    anonymous_before = edge.ingress_count("unauthorized")

    authenticated = edge.post(padded(CAP + 1))
    anonymous = edge.post(padded(CAP + 1), token=None)

    assert (authenticated.status_code, anonymous.status_code) == (413, 401)
    assert edge.ingress_count("over_cap") == before + 1
    assert edge.ingress_count("unauthorized") == anonymous_before + 1
    assert queue.count == 0


def test_past_the_hard_cap_without_nginx_the_ingress_refuses_and_counts_it(edge: Edge, queue: Queue) -> None:
    before = edge.ingress_count("over_cap")

    response = requests.post(
        f"{edge.ingress_url}{WEBHOOK}", data=padded(CAP + 1), headers={"Authorization": TOKEN}, timeout=30
    )

    assert response.status_code == 413
    assert edge.ingress_count("over_cap") == before + 1
    assert queue.count == 0
