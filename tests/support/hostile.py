"""Hostile input against the ingress, the shared parts: the in-process probe that checks every request's
invariants, the per-class tally behind RELIABILITY.md's table, and the example budgets.

An authenticated request's body is never a reason to refuse it (a non-200 stalls a GREEN API instance for up
to 24 h): whatever it holds is stored and answered 200 up to the hard cap, 413 past it. The probe asserts,
after every request, an allowed status and *one job holding exactly the sent body if 200, none otherwise*.
``GREENQ_HOSTILE_TALLY=path`` writes the per-class request counts of the session as JSON (a pytest plugin
fixture, loaded by tests/conftest.py; the tests/test_hostile_*.py modules use it).
"""

from __future__ import annotations

import json
import os
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import pytest
from hypothesis import HealthCheck, settings
from redis import Redis
from rq import Queue
from starlette.testclient import TestClient

from greenq.core.contract import Envelope
from greenq.core.settings import DEFAULT_BODY_CAP_BYTES, DEFAULT_MAX_BODY_BYTES, IngressSettings
from greenq.ingress.app import create_app
from tests.conftest import SAMPLES_DIR, TOKEN

WEBHOOK: Final = "/green-api/webhook/"
ALLOWED_STATUSES: Final = frozenset({200, 400, 401, 403, 404, 405, 413})
SMALL_LIMIT: Final = 4096
SMALL_CAP: Final = 8192
DEFAULT_LIMIT: Final = DEFAULT_MAX_BODY_BYTES
DEFAULT_CAP: Final = DEFAULT_BODY_CAP_BYTES
SAMPLE: Final = (SAMPLES_DIR / "incomingMessageReceived__textMessage.json").read_bytes()
AUTH: Final = (("Authorization", TOKEN),)

FUZZ = settings(
    max_examples=120,
    deadline=None,
    database=None,  # no .hypothesis/ directory in the checkout
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,  # the fixtures' state is reset and checked per example
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)
FEW = settings(FUZZ, max_examples=40)


# --- bookkeeping: what each class of hostile input got --------------------------------------------------


@dataclass
class Tally:
    sent: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    enqueued: int = 0


TALLIES: dict[str, Tally] = defaultdict(Tally)


@pytest.fixture(scope="session")
def hostile_tally() -> Iterator[None]:
    """Writes every class's tally at the end of the session when ``GREENQ_HOSTILE_TALLY`` names a file."""
    yield
    target = os.environ.get("GREENQ_HOSTILE_TALLY")
    if target:
        report = {
            kind: {"sent": t.sent, "statuses": dict(sorted(t.statuses.items())), "enqueued": t.enqueued}
            for kind, t in sorted(TALLIES.items())
        }
        Path(target).write_text(json.dumps(report, indent=2))


def record(kind: str, status: int, enqueued: int) -> None:
    tally = TALLIES[kind]
    tally.sent += 1
    tally.statuses[status] += 1
    tally.enqueued += enqueued


# --- in-process probe -----------------------------------------------------------------------------------

Headers = Sequence[tuple[str, str | bytes]]


def raw_headers(headers: Headers) -> list[tuple[bytes, bytes]]:
    """Headers as bytes, so values that are not ASCII reach the app as sent."""
    return [
        (name.encode("latin-1"), value.encode("latin-1") if isinstance(value, str) else value)
        for name, value in headers
    ]


class Probe:
    """Sends one request and checks the invariants: allowed status, one job iff 200, the exact body."""

    def __init__(self, client: TestClient, queue: Queue) -> None:
        self.client = client
        self.queue = queue

    def send(
        self,
        kind: str,
        content: bytes = SAMPLE,
        method: str = "POST",
        path: str = WEBHOOK,
        headers: Headers = AUTH,
    ) -> int:
        assert self.queue.count == 0, "a previous example left a job behind"
        response = self.client.request(method, path, content=content, headers=raw_headers(headers))
        jobs = self.queue.get_jobs()
        bodies = [Envelope.from_wire(wire).raw_body for job in jobs for wire in job.args[0]]
        if jobs:
            self.queue.empty()  # type: ignore[no-untyped-call]
        status = response.status_code
        record(kind, status, len(bodies))
        assert status in ALLOWED_STATUSES, f"{kind}: {status} {response.text[:300]!r}"
        if status == 200:
            assert len(jobs) == 1, f"{kind}: {len(jobs)} jobs for one accepted request"
            assert bodies == [content], f"{kind}: stored body differs from the one sent"
        else:
            assert bodies == [], f"{kind}: refused with {status} but {len(bodies)} stored"
        return status


def make_probe(settings_: IngressSettings, redis_conn: Redis, queue: Queue, peer: str = "127.0.0.1") -> Any:
    client = TestClient(create_app(settings_), client=(peer, 1), follow_redirects=False)
    return client, Probe(client, queue)


@pytest.fixture
def probe(ingress_settings: IngressSettings, redis_conn: Redis, queue: Queue) -> Iterator[Probe]:
    client, prober = make_probe(ingress_settings, redis_conn, queue)
    with client:
        yield prober


@pytest.fixture
def small_probe(ingress_settings: IngressSettings, redis_conn: Redis, queue: Queue) -> Iterator[Probe]:
    client, prober = make_probe(
        ingress_settings.model_copy(update={"max_body_bytes": SMALL_LIMIT, "body_cap_bytes": SMALL_CAP}),
        redis_conn,
        queue,
    )
    with client:
        yield prober
