"""Hostile input against the ingress: a clear status for every request, no crash, bounded memory, refusals
store nothing and an accepted body is stored exactly once, byte for byte.

An authenticated request's body is never a reason to refuse it (a non-200 stalls a GREEN API instance for up
to 24 h): whatever it holds is stored and answered 200 up to the hard cap, 413 past it. The workers'
handling of these bodies (``invalid``/``too_large`` dead letters) is tested in ``tests/test_body_classes.py``.

Property tests (hypothesis) drive the app in-process (starlette TestClient, real Redis); framing, memory and
the OpenAPI contract (schemathesis) are checked against a real ``greenq ingress`` (uvicorn) process.
Example counts are fixed so the whole file stays well under a minute. ``GREENQ_HOSTILE_TALLY=path`` writes
the per-class request counts (the figures in RELIABILITY.md) as JSON.
"""

from __future__ import annotations

import json
import os
import select
import socket
import string
import subprocess
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from ipaddress import ip_network
from pathlib import Path
from typing import Any, Final

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from redis import Redis
from rq import Queue
from schemathesis import GenerationMode
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import content_type_conformance, negative_data_rejection
from starlette.testclient import TestClient

from greenq.core.contract import Envelope, notification_queue
from greenq.core.settings import (
    DEFAULT_BODY_CAP_BYTES,
    DEFAULT_MAX_BODY_BYTES,
    OVER_CAP_PATH,
    IngressSettings,
)
from greenq.ingress.app import create_app
from greenq.ingress.client_ip import ClientAddressPolicy, IPNetwork
from greenq.ingress.errors import Forbidden
from greenq.local.redis_server import LocalRedis
from tests.conftest import OTHER_TOKEN, SAMPLES_DIR, TOKEN
from tests.support.ingress import running_ingress
from tests.support.metrics import scrape
from tests.support.processes import env_for
from tests.support.raw_http import exchange, status_of

WEBHOOK: Final = "/green-api/webhook/"
ALLOWED_STATUSES: Final = frozenset({200, 400, 401, 403, 404, 405, 413})
SMALL_LIMIT: Final = 4096
SMALL_CAP: Final = 8192
DEFAULT_LIMIT: Final = DEFAULT_MAX_BODY_BYTES
DEFAULT_CAP: Final = DEFAULT_BODY_CAP_BYTES
REAL_INGRESS_CAP: Final = 4 * 1024 * 1024
SAMPLE: Final = (SAMPLES_DIR / "incomingMessageReceived__textMessage.json").read_bytes()
AUTH: Final = (("Authorization", TOKEN),)
VALID_AUTH: Final = frozenset(
    {TOKEN, OTHER_TOKEN, f"Bearer {TOKEN}", f"bearer {TOKEN}", f"BASIC {OTHER_TOKEN}", f"  {TOKEN}  "}
)
KNOWN_PATHS: Final = frozenset(
    {"", "/healthz", "/readyz", "/metrics", "/openapi.json", WEBHOOK.rstrip("/"), OVER_CAP_PATH}
)

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


@pytest.fixture(scope="module", autouse=True)
def _write_tallies() -> Iterator[None]:
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


# --- bodies ---------------------------------------------------------------------------------------------


random_bodies = st.one_of(
    st.binary(max_size=512),
    st.binary(min_size=SMALL_LIMIT - 8, max_size=SMALL_LIMIT + 8),  # around the processing limit
    st.binary(min_size=SMALL_CAP - 8, max_size=SMALL_CAP + 8),  # around the hard cap
    st.binary(min_size=1, max_size=64).map(b"{".__add__),  # looks like an object, mostly is not
    st.tuples(st.binary(max_size=16), st.binary(max_size=16)).map(
        lambda ends: ends[0] + b'{"a": 1}' + ends[1]
    ),
)


@FUZZ
@given(raw=random_bodies)
def test_random_bytes_are_stored_exactly_up_to_the_cap(small_probe: Probe, raw: bytes) -> None:
    status = small_probe.send("random bytes", raw)

    assert status == (413 if len(raw) > SMALL_CAP else 200)


json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=12), children, max_size=6)
    ),
    max_leaves=30,
)


@FUZZ
@given(value=json_values, ascii_only=st.booleans(), pad=st.sampled_from(["", " ", "\n\t\r "]))
def test_json_documents_of_any_kind_are_stored(
    small_probe: Probe, value: object, ascii_only: bool, pad: str
) -> None:
    raw = f"{pad}{json.dumps(value, ensure_ascii=ascii_only)}{pad}".encode()

    status = small_probe.send("json documents", raw)

    assert status == (413 if len(raw) > SMALL_CAP else 200)


BAD_UTF8: Final = (
    b"\xff",
    b"\xfe\xff",
    b"\xc3\x28",  # bad continuation
    b"\xa0\xa1",  # lone continuation bytes
    b"\xe2\x82",  # truncated 3-byte sequence
    b"\xf0\x28\x8c\xbc",
    b"\xf8\xa1\xa1\xa1\xa1",  # 5-byte form
    b"\xc0\xaf",  # overlong '/'
    b"\xed\xa0\x80",  # UTF-16 surrogate encoded in UTF-8
    b"\xf4\x90\x80\x80",  # above U+10FFFF
)


@FUZZ
@given(
    before=st.text(max_size=20),
    bad=st.sampled_from(BAD_UTF8),
    after=st.text(max_size=20),
    in_key=st.booleans(),
)
def test_invalid_utf8_anywhere_in_an_object_is_stored_exactly(
    small_probe: Probe, before: str, bad: bytes, after: str, in_key: bool
) -> None:
    literal = json.dumps(before, ensure_ascii=False)[:-1].encode() + bad + json.dumps(after)[1:].encode()
    raw = b"{" + literal + b': "v"}' if in_key else b'{"k": ' + literal + b"}"

    assert small_probe.send("invalid utf-8", raw) == 200


def nested(depth: int, opener: bytes = b"[", closer: bytes = b"]") -> bytes:
    return b'{"a": ' + opener * depth + closer * depth + b"}"


EXPLICIT_BODIES: Final[list[tuple[str, bytes, int]]] = [
    ("deep array 100k unclosed", b"[" * 100_000, 200),
    ("deep object 100k unclosed", b'{"a":' * 100_000, 200),
    ("deep array 100k balanced", b"[" * 100_000 + b"]" * 100_000, 200),
    ("object holding 100k-deep array", nested(100_000), 200),
    ("object holding 1100-deep array", nested(1100), 200),
    ("object holding 1000-deep array", nested(1000), 200),
    ("exponent 1e999999", b'{"a": 1e999999}', 200),
    ("exponent 1e-999999", b'{"a": 1e-999999}', 200),
    ("integer of 100k digits", b'{"a": 1' + b"0" * 100_000 + b"}", 200),
    ("integer of 300 digits", b'{"a": 1' + b"0" * 300 + b"}", 200),
    ("integer above uint64", b'{"a": 123456789012345678901234567890}', 200),
    ("string of 1 MiB", b'{"s": "' + b"x" * (DEFAULT_LIMIT - 9) + b'"}', 200),
    ("string of 2 MiB (over the processing limit)", b'{"s": "' + b"x" * (2 * DEFAULT_LIMIT) + b'"}', 200),
    ("string past the hard cap", b'{"s": "' + b"x" * DEFAULT_CAP + b'"}', 413),
    ("key of 512 KiB", b'{"' + b"k" * (512 * 1024) + b'": 1}', 200),
    ("50k keys", b"{" + b",".join(b'"k%d":%d' % (i, i) for i in range(50_000)) + b"}", 200),
    ("duplicate keys", b'{"typeWebhook": "a", "typeWebhook": "b", "x": 1, "x": 2}', 200),
    ("escaped NUL", b'{"a": "\\u0000"}', 200),
    ("raw control character", b'{"a": "\x01"}', 200),
    ("lone surrogate escape", b'{"a": "\\ud800"}', 200),
    ("UTF-8 BOM", b"\xef\xbb\xbf{}", 200),
    ("NaN", b'{"a": NaN}', 200),
    ("Infinity", b'{"a": Infinity}', 200),
    ("comment", b'{"a": 1 /* c */}', 200),
    ("trailing comma", b'{"a": 1,}', 200),
    ("two objects", b"{} {}", 200),
    ("trailing NUL", b"{}\x00", 200),
    ("single quotes", b"{'a': 1}", 200),
    ("empty", b"", 200),
    ("blank", b" \n\t ", 200),
    ("null", b"null", 200),
    ("array", b"[{}]", 200),
    ("string", b'"{}"', 200),
    ("UTF-16 encoded object", '{"a": 1}'.encode("utf-16"), 200),
]


@pytest.mark.parametrize(
    ("body", "status"), [case[1:] for case in EXPLICIT_BODIES], ids=[case[0] for case in EXPLICIT_BODIES]
)
def test_explicit_hostile_bodies(probe: Probe, body: bytes, status: int) -> None:
    assert probe.send("explicit bodies", body) == status


def test_bodies_up_to_the_hard_cap_are_stored_one_byte_over_is_413(probe: Probe) -> None:
    def body(size: int) -> bytes:
        return b'{"s": "' + b"y" * (size - 9) + b'"}'

    assert len(body(DEFAULT_CAP)) == DEFAULT_CAP
    for size in (DEFAULT_LIMIT, DEFAULT_LIMIT + 1, DEFAULT_CAP - 1, DEFAULT_CAP):
        assert probe.send("limit and cap edges", body(size)) == 200
    assert probe.send("limit and cap edges", body(DEFAULT_CAP + 1)) == 413


@pytest.mark.parametrize(
    ("value", "status"),
    [("abc", 400), ("1e3", 400), ("9" * 40, 413), (str(DEFAULT_CAP + 1), 413)],
    ids=["letters", "float", "40 digits", "cap+1"],
)
def test_absurd_content_length_is_refused_before_reading(probe: Probe, value: str, status: int) -> None:
    headers = [*AUTH, ("Content-Length", value)]

    assert probe.send("content-length", b'{"a": 1}', headers=headers) == status


# --- headers --------------------------------------------------------------------------------------------

header_junk = st.binary(max_size=300).filter(lambda value: not set(value) & {0, 10, 13})
authorization_values = st.one_of(st.sampled_from(sorted(VALID_AUTH)).map(str.encode), header_junk)


@FUZZ
@given(values=st.lists(authorization_values, max_size=3))
def test_authorization_header_missing_repeated_or_wrong_is_401(
    small_probe: Probe, values: list[bytes]
) -> None:
    headers = [("Authorization", value) for value in values]

    status = small_probe.send("authorization", headers=headers)

    single_valid = len(values) == 1 and values[0].decode("latin-1") in VALID_AUTH
    assert status == (200 if single_valid else 401)


header_names = st.sampled_from(
    ["x-fuzz", "x-forwarded-for", "x-real-ip", "forwarded", "content-type", "user-agent", "cookie", "accept"]
)
header_values = st.one_of(header_junk, st.sampled_from([b"a" * 65_536, "é€😀".encode(), b"\xff" * 1000]))


@FEW
@given(extra=st.lists(st.tuples(header_names, header_values), max_size=40), filler=st.integers(0, 400))
def test_absurd_headers_do_not_change_the_answer(
    small_probe: Probe, extra: list[tuple[str, bytes]], filler: int
) -> None:
    headers: list[tuple[str, str | bytes]] = [*AUTH, *extra, *((f"x-filler-{i}", "v") for i in range(filler))]

    assert small_probe.send("absurd headers", headers=headers) == 200


# --- methods and paths ----------------------------------------------------------------------------------


@FEW
@given(method=st.sampled_from(["GET", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]), with_auth=st.booleans())
def test_wrong_methods_on_the_webhook_are_405(small_probe: Probe, method: str, with_auth: bool) -> None:
    assert small_probe.send("wrong method", method=method, headers=AUTH if with_auth else ()) == 405


path_text = st.text(alphabet=string.ascii_letters + string.digits + "-._~!$&'()*+,;=:@/", max_size=40)


@FUZZ
@given(path=path_text, method=st.sampled_from(["GET", "POST", "PUT", "DELETE"]))
def test_unknown_paths_are_404(small_probe: Probe, path: str, method: str) -> None:
    full = "/" + path
    assume(full.rstrip("/") not in KNOWN_PATHS)
    assume(not {".", ".."} & set(full.split("/")))  # dot segments are resolved by the client
    assume(not full.startswith("//"))  # the client would read "//x" as a host, not a path

    assert small_probe.send("unknown path", method=method, path=full) == 404


@pytest.mark.parametrize("path", ["/green-api/webhook", "/healthz/", "/metrics/"])
def test_near_miss_paths_are_404_not_redirects(probe: Probe, path: str) -> None:
    response = probe.client.post(
        path, content=SAMPLE, headers={"Authorization": TOKEN, "Host": "evil.example"}
    )

    assert response.status_code == 404, response.headers.get("location")


# --- forwarded addresses --------------------------------------------------------------------------------

ALLOWED_NETS: Final[list[IPNetwork]] = [ip_network("51.250.84.44"), ip_network("203.0.113.0/24")]
PROXY: Final = "10.0.0.2"
TRUSTED_NETS: Final[list[IPNetwork]] = [ip_network(PROXY)]
POLICY: Final = ClientAddressPolicy(ALLOWED_NETS, TRUSTED_NETS)
hop_text = st.one_of(
    st.sampled_from(
        ["51.250.84.44", "203.0.113.7", PROXY, "::ffff:51.250.84.44", "unknown", "", " ", "51.250.84.44:443"]
    ),
    st.ip_addresses().map(str),
    st.text(max_size=15),
)
chains = st.one_of(
    st.lists(hop_text, max_size=8).map(", ".join), st.lists(hop_text, max_size=8).map(",".join), st.text()
)


def outsider(address: str) -> bool:
    parsed = POLICY.client_address(address, None, None)
    return parsed is not None and not any(parsed in net for net in [*ALLOWED_NETS, *TRUSTED_NETS])


outsiders = st.ip_addresses().map(str).filter(outsider)


@settings(FUZZ, max_examples=500)
@given(peer=outsiders, forwarded_for=st.none() | chains, real_ip=st.none() | hop_text)
def test_forwarded_headers_from_an_untrusted_peer_never_pass_the_allowlist(
    peer: str, forwarded_for: str | None, real_ip: str | None
) -> None:
    with pytest.raises(Forbidden):
        POLICY.check(peer, forwarded_for, real_ip)


@settings(FUZZ, max_examples=500)
@given(spoofed=st.lists(hop_text, max_size=5), client=outsiders, proxies=st.integers(0, 3))
def test_a_spoofed_prefix_behind_the_trusted_proxy_never_passes(
    spoofed: list[str], client: str, proxies: int
) -> None:
    chain = ", ".join([*spoofed, client, *[PROXY] * proxies])

    with pytest.raises(Forbidden):
        POLICY.check(PROXY, chain, "51.250.84.44")


def header_safe(text: str) -> bool:
    return not set(text) & {"\r", "\n", "\x00"}


@FEW
@given(forwarded_for=chains.filter(header_safe), real_ip=st.none() | hop_text.filter(header_safe))
def test_spoofed_forwarded_for_through_the_app_is_403_and_stores_nothing(
    ingress_settings: IngressSettings,
    redis_conn: Redis,
    queue: Queue,
    forwarded_for: str,
    real_ip: str | None,
) -> None:
    settings_ = ingress_settings.model_copy(
        update={"allowed_ips": ALLOWED_NETS, "trusted_proxies": TRUSTED_NETS}
    )
    client, prober = make_probe(settings_, redis_conn, queue, peer="198.51.100.9")
    headers: list[tuple[str, str | bytes]] = [*AUTH, ("X-Forwarded-For", forwarded_for.encode())]
    if real_ip is not None:
        headers.append(("X-Real-IP", real_ip.encode()))
    with client:
        assert prober.send("spoofed X-Forwarded-For", headers=headers) == 403


# --- a real ingress process: framing, memory, OpenAPI ---------------------------------------------------


@dataclass
class RealIngress:
    url: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS")

    def log_size(self) -> int:
        return self.log.stat().st_size

    def log_since(self, offset: int) -> str:
        with self.log.open("rb") as handle:
            handle.seek(offset)
            return handle.read().decode(errors="replace")


@pytest.fixture(scope="module")
def real_ingress(redis_server: LocalRedis, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealIngress]:
    # the endless-body test bounds memory well below the cap
    env = env_for(redis_server, GREENQ_BODY_CAP_BYTES=str(REAL_INGRESS_CAP))
    log = tmp_path_factory.mktemp("real-ingress") / "output.log"
    with running_ingress(env, log) as (port, process):
        yield RealIngress(f"http://127.0.0.1:{port}", port, process, log)


REQUEST_HEAD: Final = f"POST {WEBHOOK} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {TOKEN}\r\n".encode()


BROKEN_FRAMING: Final = [
    ("Content-Length not a number", REQUEST_HEAD + b"Content-Length: abc\r\n\r\n{}"),
    ("two different Content-Lengths", REQUEST_HEAD + b"Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}"),
    ("negative Content-Length", REQUEST_HEAD + b"Content-Length: -1\r\n\r\n{}"),
    ("chunked and Content-Length", REQUEST_HEAD + b"Transfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n"),
    ("header without colon", REQUEST_HEAD + b"Broken header line\r\nContent-Length: 2\r\n\r\n{}"),
    ("not HTTP (TLS hello)", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64),
]


@pytest.mark.parametrize("raw", [pytest.param(raw, id=name) for name, raw in BROKEN_FRAMING])
def test_broken_framing_is_400_from_the_server(real_ingress: RealIngress, queue: Queue, raw: bytes) -> None:
    offset = real_ingress.log_size()

    response = exchange(real_ingress.port, raw)

    status = status_of(response)
    record("broken framing (real server)", status or 0, queue.count)
    assert status == 400, response[:200]
    assert queue.count == 0
    logged = wait_for_log(real_ingress, offset, ("Invalid HTTP request received",))
    assert "Traceback" not in logged


def test_endless_chunked_body_is_cut_at_the_limit_with_bounded_memory(
    real_ingress: RealIngress, queue: Queue
) -> None:
    rss_before = real_ingress.rss_kib()
    chunk = b"x" * 65536
    sent = 0
    response = b""
    with socket.create_connection(("127.0.0.1", real_ingress.port), timeout=5) as sock:
        sock.sendall(REQUEST_HEAD + b"Transfer-Encoding: chunked\r\n\r\n")
        for _ in range(512):  # at most 32 MiB
            if select.select([sock], [], [], 0)[0]:
                break
            try:
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            except (BrokenPipeError, ConnectionResetError, TimeoutError):
                break
            sent += len(chunk)
        try:
            response = sock.recv(4096)
        except (ConnectionResetError, TimeoutError):
            response = b""
    grown = real_ingress.rss_kib() - rss_before

    record("endless chunked body (real server)", status_of(response) or 0, queue.count)
    assert status_of(response) == 413, response[:200]
    assert sent < 32 * 1024 * 1024, "the server kept reading past the limit"
    assert grown < 16 * 1024, f"ingress grew by {grown} KiB"
    assert queue.count == 0


@pytest.mark.parametrize(
    ("raw", "half_close"),
    [
        (REQUEST_HEAD + b'Content-Length: 1000\r\n\r\n{"a":', True),
        (REQUEST_HEAD + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n", False),
    ],
    ids=["truncated body, then half-close", "bad chunk size"],
)
def test_a_body_cut_short_is_a_refusal_not_a_traceback(
    real_ingress: RealIngress, queue: Queue, raw: bytes, half_close: bool
) -> None:
    offset = real_ingress.log_size()

    exchange(real_ingress.port, raw, half_close=half_close)

    logged = wait_for_log(real_ingress, offset, ("Traceback", "webhook refused"))
    assert queue.count == 0
    assert "Traceback" not in logged
    assert "webhook refused" in logged


def wait_for_log(real_ingress: RealIngress, offset: int, markers: tuple[str, ...]) -> str:
    """The ingress's output since ``offset`` once one of ``markers`` shows up (10 s at most)."""
    deadline = time.monotonic() + 10
    logged = real_ingress.log_since(offset)
    while not any(marker in logged for marker in markers) and time.monotonic() < deadline:
        time.sleep(0.05)
        logged = real_ingress.log_since(offset)
    return logged


@pytest.mark.xfail(
    strict=True,
    reason="KNOWN LIMITATION (kept for throughput): uvicorn's httptools parser buffers header bytes "
    "without a "
    "limit (a 64 MiB header grew the ingress by ~116 MiB). Every shipped topology puts nginx in front, whose "
    "large_client_header_buffers bounds headers; the README says never to expose the ingress directly. "
    "h11 with h11_max_incomplete_event_size would fix it at a large throughput cost.",
)
def test_endless_header_is_cut_with_bounded_memory(real_ingress: RealIngress) -> None:
    rss_before = real_ingress.rss_kib()
    with socket.create_connection(("127.0.0.1", real_ingress.port), timeout=5) as sock:
        sock.sendall(REQUEST_HEAD + b"X-Flood: ")
        for _ in range(512):  # at most 32 MiB
            try:
                sock.sendall(b"a" * 65536)
            except (BrokenPipeError, ConnectionResetError, TimeoutError):
                break
        grown = real_ingress.rss_kib() - rss_before
    assert grown < 16 * 1024, f"ingress grew by {grown} KiB"


# --- schemathesis: the ingress against its own OpenAPI document -----------------------------------------

Check = Callable[..., Any]
SCHEMATHESIS = settings(FUZZ, max_examples=60)


def run_schemathesis(
    real_ingress: RealIngress,
    redis_conn: Redis,
    headers: dict[str, str] | None,
    mode: GenerationMode,
    kind: str,
) -> Counter[str]:
    """Every operation of the live ingress's OpenAPI document, fuzzed by schemathesis; how many requests
    went to each path. Without ``headers``, schemathesis generates the Authorization header."""
    schema = schemathesis.openapi.from_url(f"{real_ingress.url}/openapi.json")
    session = requests.Session()
    calls: Counter[str] = Counter()
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result
        operation = result.ok()
        if mode is GenerationMode.NEGATIVE and operation.path != WEBHOOK:
            continue  # the GET endpoints take no input, so there is nothing to negate
        calls[operation.path] += fuzz_operation(operation, redis_conn, session, headers, mode, kind)
    return calls


def fuzz_operation(
    operation: Any,
    redis_conn: Redis,
    session: requests.Session,
    headers: dict[str, str] | None,
    mode: GenerationMode,
    kind: str,
) -> int:
    """Schemathesis's checks plus ours: no 5xx but the documented 503, one stored job iff 200, and a webhook
    request without the valid token refused 401 with nothing stored. Returns how many requests it sent."""
    queue_key = notification_queue(redis_conn).key
    # /metrics is documented as JSON (a known defect, see test_metrics_content_type_is_documented).
    excluded: list[Check] = [content_type_conformance] if operation.path == "/metrics" else []
    if operation.path == WEBHOOK:
        # By design: an authenticated body that is not an object is stored (200), never refused, because a
        # refusal stalls the GREEN API instance; the workers dead-letter it (tests/test_body_classes.py).
        excluded.append(negative_data_rejection)
    sent = 0

    @SCHEMATHESIS
    @given(case=operation.as_strategy(generation_mode=mode, headers=headers))
    def call(case: Any) -> None:
        nonlocal sent
        before = redis_conn.llen(queue_key)
        response = case.call(session=session)
        stored = redis_conn.llen(queue_key) - before
        sent += 1
        record(kind, response.status_code, stored)
        documented_503 = response.status_code == 503 and case.path == WEBHOOK
        assert response.status_code < 500 or documented_503, response.text[:300]
        assert stored == (1 if response.status_code == 200 and case.method == "POST" else 0)
        if headers is None and case.path == WEBHOOK:  # a generated token is never the valid one
            assert (response.status_code, stored) == (401, 0), (case.headers, response.text[:300])
            assert response.json()["status"] == "refused"
        case.validate_response(response, excluded_checks=excluded)

    call()
    return sent


def unauthorized_refusals(real_ingress: RealIngress) -> float:
    """The ingress's own count of requests it refused for their token."""
    return scrape(f"{real_ingress.url}/metrics", 'greenq_ingress_requests_total{outcome="unauthorized"}')


def test_schemathesis_without_a_valid_token(real_ingress: RealIngress, redis_conn: Redis) -> None:
    refused_before = unauthorized_refusals(real_ingress)

    calls = run_schemathesis(
        real_ingress, redis_conn, None, GenerationMode.POSITIVE, "schemathesis, generated token"
    )

    assert calls[WEBHOOK] > 0, calls
    assert redis_conn.llen(notification_queue(redis_conn).key) == 0
    assert unauthorized_refusals(real_ingress) - refused_before == calls[WEBHOOK]  # each one counted


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
def test_schemathesis_with_the_token(
    real_ingress: RealIngress, redis_conn: Redis, mode: GenerationMode
) -> None:
    run_schemathesis(real_ingress, redis_conn, {"Authorization": TOKEN}, mode, f"schemathesis {mode}, token")


def test_metrics_content_type_is_documented(real_ingress: RealIngress) -> None:
    document = requests.get(f"{real_ingress.url}/openapi.json", timeout=10).json()

    assert "text/plain" in document["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
