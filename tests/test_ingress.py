"""The ingress against a real redis-server: what gets a 200, what is refused, refusals store nothing."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from redis import Redis
from rq import Queue
from starlette.testclient import TestClient

from greenq.core import keys
from greenq.core.contract import Envelope
from greenq.core.settings import OVER_CAP_PATH, IngressSettings
from greenq.ingress.answers import ANSWERS, answer_for
from greenq.ingress.app import create_app
from greenq.ingress.errors import BadRequest, Forbidden, OverCap, Unauthorized, Unavailable
from greenq.ingress.metrics import REQUEST_OUTCOMES
from tests.conftest import OTHER_TOKEN, SAMPLES_DIR, TOKEN, sample_paths

WEBHOOK = "/green-api/webhook/"
TEXT_SAMPLE = (SAMPLES_DIR / "incomingMessageReceived__textMessage.json").read_bytes()


def make_client(settings: IngressSettings, connection: Redis, peer: str = "127.0.0.1") -> TestClient:
    del connection  # the app makes its own asyncio client from settings.redis_url (same server)
    return TestClient(create_app(settings), client=(peer, 40000))


@pytest.fixture
def client(ingress_settings: IngressSettings, redis_conn: Redis) -> Iterator[TestClient]:
    with make_client(ingress_settings, redis_conn) as test_client:
        yield test_client


def queued_envelopes(queue: Queue) -> list[Envelope]:
    envelopes: list[Envelope] = []
    for job in queue.get_jobs():
        assert job.func_name == keys.JOB_FUNCTION
        envelopes.extend(Envelope.from_wire(wire) for wire in job.args[0])
    return envelopes


def metric_value(client: TestClient, line_prefix: str) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(line_prefix):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


@pytest.mark.parametrize("path", sample_paths(), ids=lambda p: p.stem)
def test_every_sample_is_accepted_and_stored_byte_for_byte(
    client: TestClient, queue: Queue, path: Path
) -> None:
    body = path.read_bytes()

    response = client.post(WEBHOOK, content=body, headers={"Authorization": TOKEN})

    assert response.status_code == 200, response.text
    [envelope] = queued_envelopes(queue)
    assert envelope.body.encode() == body
    assert envelope.source == "webhook"
    assert envelope.token_id == "instance-a"
    assert envelope.request_id == response.json()["request_id"] == response.headers["x-request-id"]


@pytest.mark.parametrize(
    ("header", "token_id"),
    [(TOKEN, "instance-a"), (f"Bearer {TOKEN}", "instance-a"), (f"Basic {OTHER_TOKEN}", "instance-b")],
)
def test_token_accepted_bare_or_with_prefix(
    client: TestClient, queue: Queue, header: str, token_id: str
) -> None:
    response = client.post(WEBHOOK, content=TEXT_SAMPLE, headers={"Authorization": header})

    assert response.status_code == 200
    assert [e.token_id for e in queued_envelopes(queue)] == [token_id]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "wrong-token"},
        {"Authorization": f"Bearer {TOKEN}x"},
        {"Authorization": TOKEN[:-1]},
        {"Authorization": ""},
    ],
    ids=["missing", "wrong", "suffix", "prefix-of-token", "empty"],
)
def test_bad_token_is_401_and_stores_nothing(
    client: TestClient, queue: Queue, headers: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        response = client.post(WEBHOOK, content=TEXT_SAMPLE, headers=headers)

    assert response.status_code == 401
    assert queue.count == 0
    assert TOKEN not in caplog.text
    assert OTHER_TOKEN not in caplog.text
    assert metric_value(client, 'greenq_ingress_requests_total{outcome="unauthorized"}') == 1


def test_repeated_authorization_header_is_401(client: TestClient, queue: Queue) -> None:
    response = client.post(
        WEBHOOK, content=TEXT_SAMPLE, headers=[("Authorization", TOKEN), ("Authorization", "other")]
    )

    assert response.status_code == 401
    assert queue.count == 0


def test_unauthenticated_mode_needs_explicit_opt_in(
    ingress_settings: IngressSettings, redis_conn: Redis, queue: Queue, caplog: pytest.LogCaptureFixture
) -> None:
    settings = ingress_settings.model_copy(update={"tokens": {}, "allow_unauthenticated": True})

    with caplog.at_level(logging.WARNING), make_client(settings, redis_conn) as open_client:
        response = open_client.post(WEBHOOK, content=TEXT_SAMPLE)

    assert response.status_code == 200
    assert queue.count == 1
    assert "WITHOUT a token" in caplog.text


def test_settings_refuse_to_start_without_tokens(ingress_settings: IngressSettings) -> None:
    with pytest.raises(ValueError, match="no webhook token configured"):
        IngressSettings(_env_file=None, redis_url=ingress_settings.redis_url, tokens="")  # type: ignore[call-arg,arg-type]


@pytest.fixture
def allowlisted(ingress_settings: IngressSettings) -> IngressSettings:
    return IngressSettings.model_validate(
        {
            **ingress_settings.model_dump(),
            "tokens": {"instance-a": TOKEN},
            "allowed_ips": ["51.250.84.44", "203.0.113.0/24"],
            "trusted_proxies": ["10.0.0.2"],
        }
    )


@pytest.mark.parametrize(
    ("peer", "headers", "status"),
    [
        ("51.250.84.44", {}, 200),
        ("203.0.113.77", {}, 200),
        ("198.51.100.9", {}, 403),
        # Untrusted peer claiming to be GREEN API: the header is ignored.
        ("198.51.100.9", {"X-Forwarded-For": "51.250.84.44"}, 403),
        ("198.51.100.9", {"X-Real-IP": "51.250.84.44"}, 403),
        # Behind the trusted proxy: the forwarded address decides.
        ("10.0.0.2", {"X-Forwarded-For": "51.250.84.44"}, 200),
        ("10.0.0.2", {"X-Forwarded-For": "198.51.100.9"}, 403),
        # A client-supplied first hop is not believed: the right-most untrusted hop is the client.
        ("10.0.0.2", {"X-Forwarded-For": "51.250.84.44, 198.51.100.9"}, 403),
        ("10.0.0.2", {"X-Real-IP": "203.0.113.5"}, 200),
        ("10.0.0.2", {"X-Forwarded-For": "not-an-ip"}, 403),
    ],
)
def test_ip_allowlist(
    allowlisted: IngressSettings,
    redis_conn: Redis,
    queue: Queue,
    peer: str,
    headers: dict[str, str],
    status: int,
) -> None:
    with make_client(allowlisted, redis_conn, peer=peer) as peer_client:
        response = peer_client.post(WEBHOOK, content=TEXT_SAMPLE, headers={"Authorization": TOKEN, **headers})

    assert response.status_code == status
    assert queue.count == (1 if status == 200 else 0)


SMALL = {"max_body_bytes": 4096, "body_cap_bytes": 8192}


@pytest.fixture
def small_client(ingress_settings: IngressSettings, redis_conn: Redis) -> Iterator[TestClient]:
    with make_client(ingress_settings.model_copy(update=SMALL), redis_conn) as test_client:
        yield test_client


def test_body_over_the_hard_cap_is_413_by_declared_length(small_client: TestClient, queue: Queue) -> None:
    body = b'{"pad": "' + b"x" * 8192 + b'"}'

    response = small_client.post(WEBHOOK, content=body, headers={"Authorization": TOKEN})

    assert response.status_code == 413
    assert queue.count == 0
    assert metric_value(small_client, 'greenq_ingress_requests_total{outcome="over_cap"}') == 1


def test_body_over_the_hard_cap_is_413_when_streamed_without_length(
    small_client: TestClient, queue: Queue
) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"pad": "'
        for _ in range(20):
            yield b"y" * 1024
        yield b'"}'

    response = small_client.post(WEBHOOK, content=chunks(), headers={"Authorization": TOKEN})

    assert response.status_code == 413
    assert queue.count == 0


@pytest.mark.parametrize("size", [4096, 4097, 8192], ids=["at the limit", "limit+1", "at the cap"])
def test_bodies_up_to_the_cap_are_stored_and_marked_past_the_limit(
    small_client: TestClient, queue: Queue, size: int
) -> None:
    body = b'{"typeWebhook": "x", "pad": "' + b"z" * (size - 31) + b'"}'
    assert len(body) == size

    response = small_client.post(WEBHOOK, content=body, headers={"Authorization": TOKEN})

    assert response.status_code == 200
    [envelope] = queued_envelopes(queue)
    assert envelope.raw_body == body
    assert envelope.over_limit == (4096 if size > 4096 else None)


@pytest.mark.parametrize(
    "body",
    [b"", b"   ", b"not json", b"[1, 2]", b'"text"', b"42", b"null", b'{"a": 1', b"\xff\xfe{}"],
    ids=["empty", "blank", "garbage", "array", "string", "number", "null", "truncated", "bad-utf8"],
)
def test_body_that_is_not_a_json_object_is_stored_exactly_and_answered_200(
    client: TestClient, queue: Queue, body: bytes
) -> None:
    response = client.post(WEBHOOK, content=body, headers={"Authorization": TOKEN})

    assert response.status_code == 200
    [envelope] = queued_envelopes(queue)
    assert envelope.raw_body == body
    assert envelope.body_encoding == ("base64" if body.startswith(b"\xff") else "text")


def test_the_over_cap_path_counts_nginx_refusals_after_checking_the_token(
    client: TestClient, queue: Queue
) -> None:
    headers = {"X-Greenq-Declared-Length": "99999999"}

    anonymous = client.post(OVER_CAP_PATH, headers=headers)
    authenticated = client.post(OVER_CAP_PATH, headers={**headers, "Authorization": TOKEN})

    assert (anonymous.status_code, authenticated.status_code) == (401, 413)
    assert "99999999 bytes" in authenticated.json()["reason"]
    chunked = client.post(OVER_CAP_PATH, headers={"Authorization": TOKEN, "X-Greenq-Declared-Length": "<b>"})
    assert "an unknown number of bytes" in chunked.json()["reason"]
    assert queue.count == 0
    assert metric_value(client, 'greenq_ingress_requests_total{outcome="over_cap"}') == 2


def test_content_type_is_ignored(client: TestClient, queue: Queue) -> None:
    response = client.post(
        WEBHOOK, content=TEXT_SAMPLE, headers={"Authorization": TOKEN, "Content-Type": "text/plain"}
    )

    assert response.status_code == 200
    assert queue.count == 1


def test_redis_down_is_503_and_counted(
    ingress_settings: IngressSettings, caplog: pytest.LogCaptureFixture
) -> None:
    from greenq.local.procs import free_port

    dead_url = f"redis://127.0.0.1:{free_port()}/0"
    dead = ingress_settings.model_copy(update={"redis_url": dead_url})
    with make_client(dead, Redis.from_url(dead_url, socket_timeout=1)) as down_client:
        response = down_client.post(WEBHOOK, content=TEXT_SAMPLE, headers={"Authorization": TOKEN})
        ready = down_client.get("/readyz")
        alive = down_client.get("/healthz")
        unavailable = metric_value(down_client, 'greenq_ingress_requests_total{outcome="unavailable"}')
        redis_errors = metric_value(down_client, "greenq_ingress_redis_errors_total")

    assert response.status_code == 503
    assert ready.status_code == 503
    assert alive.status_code == 200
    assert unavailable == 1
    assert redis_errors == 1
    assert TOKEN not in caplog.text


def test_readyz_and_healthz_with_redis_up(client: TestClient) -> None:
    assert client.get("/readyz").json() == {"status": "ready"}
    assert client.get("/healthz").json() == {"status": "ok"}


def test_metrics_count_accepted_requests(client: TestClient) -> None:
    for _ in range(3):
        client.post(WEBHOOK, content=TEXT_SAMPLE, headers={"Authorization": TOKEN})

    assert metric_value(client, 'greenq_ingress_requests_total{outcome="accepted"}') == 3
    assert metric_value(client, 'greenq_ingress_request_duration_seconds_count{outcome="accepted"}') == 3


def test_webhook_path_is_configurable(
    ingress_settings: IngressSettings, redis_conn: Redis, queue: Queue
) -> None:
    settings = ingress_settings.model_copy(update={"webhook_path": "/hooks/green/"})

    with make_client(settings, redis_conn) as custom:
        moved = custom.post("/hooks/green/", content=TEXT_SAMPLE, headers={"Authorization": TOKEN})
        old = custom.post(WEBHOOK, content=TEXT_SAMPLE, headers={"Authorization": TOKEN})

    assert moved.status_code == 200
    assert old.status_code == 404
    assert queue.count == 1


def test_duplicated_key_survives_in_the_stored_body(client: TestClient, queue: Queue) -> None:
    body = TEXT_SAMPLE.replace(b'"timestamp": 1588091580,', b'"timestamp": 1, "timestamp": 1588091580,')
    assert body != TEXT_SAMPLE

    response = client.post(WEBHOOK, content=body, headers={"Authorization": TOKEN})

    assert response.status_code == 200
    [envelope] = queued_envelopes(queue)
    assert envelope.body.encode() == body
    assert orjson.loads(envelope.body)["timestamp"] == 1588091580


def test_refusals_metric_outcomes_and_the_openapi_document_come_from_one_table(client: TestClient) -> None:
    refusals = (BadRequest, Unauthorized, Forbidden, OverCap, Unavailable)
    documented = client.get("/openapi.json").json()["paths"][WEBHOOK]["post"]["responses"]

    assert {refusal.outcome: refusal.status_code for refusal in refusals} == {
        "bad_request": 400,
        "unauthorized": 401,
        "forbidden": 403,
        "over_cap": 413,
        "unavailable": 503,
    }
    assert [r.__name__ for r in refusals if r.log_level == logging.ERROR] == ["OverCap", "Unavailable"]
    assert sorted(REQUEST_OUTCOMES) == sorted(
        ["accepted", "unauthorized", "forbidden", "over_cap", "bad_request", "unavailable", "internal_error"]
    )
    assert sorted(documented) == ["200", "400", "401", "403", "413", "503"]  # a 500 is a bug, never promised
    for refusal in refusals:
        assert documented[str(refusal.status_code)] == {
            "description": answer_for(refusal.outcome).description,
            "content": {"application/json": {}},
        }
    assert {answer.status for answer in ANSWERS} == {200, 500, *(refusal.status_code for refusal in refusals)}


def test_every_request_outcome_is_exported_at_zero_before_the_first_request(client: TestClient) -> None:
    exported = client.get("/metrics").text.splitlines()

    for outcome in REQUEST_OUTCOMES:
        assert f'greenq_ingress_requests_total{{outcome="{outcome}"}} 0.0' in exported
