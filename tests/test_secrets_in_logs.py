"""Webhook tokens stay secret: never in a log line, a metric, or Redis; compared in constant time.

A token a sender puts inside the *body* is not tested: the body is notification data, stored and logged
on purpose (the outcome log line carries it), so it would show up by design, not by a leak.
"""

from __future__ import annotations

import base64
import contextlib
import hmac
import re
import secrets
import signal
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import httpx2 as httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import SecretStr
from redis import Redis
from starlette.testclient import TestClient

import greenq.ingress.auth
from greenq.core.settings import DEFAULT_BODY_CAP_BYTES, IngressSettings
from greenq.ingress.app import create_app
from greenq.ingress.auth import TokenAuthenticator
from greenq.ingress.errors import Unauthorized
from greenq.local.procs import free_port
from tests.conftest import SAMPLES_DIR
from tests.support.processes import REPO, clean_env, poll

WEBHOOK = "/green-api/webhook/"
TOKEN_NAME = "secrets-test"
SAMPLE = (SAMPLES_DIR / "incomingMessageReceived__textMessage.json").read_bytes()


class Pipeline:
    """A ``greenq up`` process whose output goes to files."""

    def __init__(self, tmp_path: Path, token: str) -> None:
        self.port = free_port()
        self.data_dir = tmp_path / "data"
        self.stdout_path = tmp_path / "up.stdout"
        self.stderr_path = tmp_path / "up.stderr"
        env = clean_env(GREENQ_TOKENS=f"{TOKEN_NAME}={token}", GREENQ_LOG_LEVEL="DEBUG")
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.process = subprocess.Popen(
                [
                    *(sys.executable, "-m", "greenq", "up", "--ingress", "1", "--workers", "2"),
                    *("--port", str(self.port), "--data-dir", str(self.data_dir)),
                ],
                env=env,
                cwd=REPO,
                stdout=out,
                stderr=err,
            )
        poll(lambda: "Ctrl-C" in self.stdout_path.read_text() or self.process.poll() is not None, 60, "up")
        assert self.process.poll() is None, self.stderr_path.read_text()[-3000:]
        summary = self.stdout_path.read_text()
        self.worker_metrics = re.findall(r"worker\s+pid \d+\s+(\S+)", summary)
        self.ingress_urls = re.findall(r"ingress\s+pid \d+\s+(\S+)", summary)
        [self.webhook] = re.findall(r"webhook\s+(\S+)", summary)  # nginx's address when nginx runs
        assert len(self.worker_metrics) == 2
        assert len(self.ingress_urls) == 1
        self.url = self.webhook.removesuffix(WEBHOOK)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            self.process.wait(60)


@dataclass
class Capture:
    """Everything the pipeline wrote while it saw the token, and the counts that prove it was looked at."""

    token: str
    stderr: str
    metrics: dict[str, str]
    ingress_metrics_url: str
    sources: dict[str, bytes]
    by_ingress: Counter[int]
    refused: int


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Capture:
    """Runs ``greenq up``, sends accepted and refused requests, scrapes every metrics endpoint, stops it."""
    token = f"tok-{secrets.token_hex(12)}"
    up = Pipeline(tmp_path_factory.mktemp("up"), token)
    try:
        by_ingress, refused, metrics = exercise(up, token)
    finally:
        up.stop()
    assert up.process.returncode == 0
    data_files = [path for path in up.data_dir.rglob("*") if path.is_file()]
    sources = {
        "up stdout": up.stdout_path.read_bytes(),
        "up stderr (ingress, workers)": up.stderr_path.read_bytes(),
        **{f"metrics {url}": text.encode() for url, text in metrics.items()},
        **{f"file {path.relative_to(up.data_dir)}": path.read_bytes() for path in data_files},
    }
    return Capture(
        token=token,
        stderr=up.stderr_path.read_text(),
        metrics=metrics,
        ingress_metrics_url=f"{up.ingress_urls[0]}/metrics",
        sources=sources,
        by_ingress=by_ingress,
        refused=refused,
    )


#: (name, headers, body) of a request the pipeline must accept.
Accepted = tuple[str, dict[str, str], bytes]
#: (name, path, headers, body, statuses it may get) of a request the pipeline must refuse.
Refused = tuple[str, str, list[tuple[str, str]], bytes, set[int]]


def exercise(up: Pipeline, token: str) -> tuple[Counter[int], int, dict[str, str]]:
    """The requests: statuses the ingress itself gave, how many were refused, the metrics texts."""
    accepted, refused = accepted_requests(token), refused_requests(token)
    with httpx.Client(timeout=30) as client:
        send_accepted(client, up, token, accepted)
        by_ingress = send_refused(client, up, refused)

        def all_processed() -> bool:
            counted = sum(scrape(client, url, "greenq_notifications_total{") for url in up.worker_metrics)
            return counted == len(accepted)

        poll(all_processed, 60, "the workers to process every accepted notification")
        urls = [f"{up.ingress_urls[0]}/metrics", *up.worker_metrics]
        metrics = {url: client.get(url).text for url in urls}
    return by_ingress, len(refused), metrics


def accepted_requests(token: str) -> list[Accepted]:
    """The token in every accepted form, with bodies the workers handle or dead-letter."""
    return [
        ("bare", {"Authorization": token}, SAMPLE),
        ("bearer", {"Authorization": f"Bearer {token}"}, SAMPLE),
        ("basic", {"Authorization": f"basic {token}"}, SAMPLE),
        ("invalid body, dead-lettered", {"Authorization": token}, b'{"typeWebhook": "stateInstanceChanged"}'),
        ("body not JSON, dead-lettered", {"Authorization": token}, b"{nope"),
        (
            "body over the processing limit, dead-lettered",
            {"Authorization": token},
            b"{" + b" " * 2_000_000 + b"}",
        ),
        ("token in the query too", {"Authorization": token}, SAMPLE),
    ]


def refused_requests(token: str) -> list[Refused]:
    """The token where it does not belong, or almost the token.

    nginx (in front when installed) answers some refusals itself (a repeated Authorization); the ingress
    answers the rest, including nginx's over-cap 413 forwarded to it. The token must appear nowhere."""
    return [
        ("wrong token", WEBHOOK, [("Authorization", "not-the-token")], SAMPLE, {401}),
        ("token with a suffix", WEBHOOK, [("Authorization", f"{token}x")], SAMPLE, {401}),
        ("token with a prefix", WEBHOOK, [("Authorization", f"x{token}")], SAMPLE, {401}),
        ("token twice in one header", WEBHOOK, [("Authorization", f"Bearer {token} {token}")], SAMPLE, {401}),
        (
            "repeated header",
            WEBHOOK,
            [("Authorization", token), ("Authorization", token)],
            SAMPLE,
            {400, 401},
        ),
        ("in X-Api-Key", WEBHOOK, [("X-Api-Key", token)], SAMPLE, {401}),
        ("in a cookie", WEBHOOK, [("Cookie", f"token={token}")], SAMPLE, {401}),
        ("in User-Agent", WEBHOOK, [("User-Agent", token)], SAMPLE, {401}),
        ("in X-Forwarded-For", WEBHOOK, [("X-Forwarded-For", token)], SAMPLE, {401}),
        ("as a header name", WEBHOOK, [(token, "x")], SAMPLE, {401}),
        ("in the query", f"{WEBHOOK}?token={token}", [], SAMPLE, {401}),
        ("in the path", f"{WEBHOOK}{token}", [("Authorization", token)], SAMPLE, {404}),
        (
            "right token, body over the hard cap",
            WEBHOOK,
            [("Authorization", token)],
            b"{" + b" " * DEFAULT_BODY_CAP_BYTES + b"}",
            {413},
        ),
    ]


def send_accepted(client: httpx.Client, up: Pipeline, token: str, accepted: list[Accepted]) -> None:
    for name, headers, body in accepted:
        url = f"{up.webhook}?token={token}" if "query" in name else up.webhook
        response = client.post(url, content=body, headers=headers)
        assert response.status_code == 200, (name, response.text)


def send_refused(client: httpx.Client, up: Pipeline, refused: list[Refused]) -> Counter[int]:
    """Sends each refused request; the statuses of the refusals the ingress itself answered (it sets
    X-Request-ID)."""
    by_ingress: Counter[int] = Counter()
    for name, path, header_list, body, statuses in refused:
        response = client.post(f"{up.url}{path}", content=body, headers=header_list)
        assert response.status_code in statuses, (name, response.status_code, response.text[:200])
        if "x-request-id" in response.headers:
            by_ingress[response.status_code] += 1
    return by_ingress


def test_the_scan_covers_real_output(capture: Capture) -> None:
    """Guards the scans below: refusals and outcomes were logged and counted where they look."""
    assert capture.stderr.count('"message":"webhook refused"') == capture.by_ingress.total()
    assert capture.by_ingress.total() >= capture.refused - 3  # at most 404, 413 and the repeat elsewhere
    assert '"message":"notification handled"' in capture.stderr
    assert '"message":"notification invalid"' in capture.stderr
    assert '"message":"notification too_large"' in capture.stderr
    assert TOKEN_NAME in capture.stderr  # the token's name is what logs carry
    unauthorized = f'greenq_ingress_requests_total{{outcome="unauthorized"}} {capture.by_ingress[401]}.0'
    assert unauthorized in capture.metrics[capture.ingress_metrics_url]
    assert any(".aof" in name for name in capture.sources), sorted(capture.sources)


def test_no_token_in_greenq_logs_metrics_or_redis(capture: Capture) -> None:
    own = {where: content for where, content in capture.sources.items() if not where.startswith("file nginx")}

    assert leaks(own, capture.token) == []


def test_no_token_in_nginx_logs(capture: Capture) -> None:
    nginx = {where: content for where, content in capture.sources.items() if where.startswith("file nginx")}
    if not nginx:
        pytest.skip("nginx is not installed, so greenq up ran without it")

    assert leaks(nginx, capture.token) == []


def leaks(sources: dict[str, bytes], token: str) -> list[str]:
    """Every line holding the token (masked in the report)."""
    return [
        f"{where}: {redacted(line, token)}"
        for where, content in sources.items()
        for line in content.splitlines()
        if any(form in line for form in secret_forms(token))
    ]


def redacted(line: bytes, token: str) -> str:
    """The leaking line around the token, the token masked, so a failure does not repeat the secret."""
    text = line.decode(errors="replace")
    for form in secret_forms(token):
        text = text.replace(form.decode(), "<TOKEN>")
    at = text.find("<TOKEN>")
    return text[max(0, at - 120) : at + 60]


def secret_forms(token: str) -> list[bytes]:
    """The token as it could appear in text: raw, and base64 as in a Basic credential."""
    raw = token.encode()
    return [raw, base64.b64encode(raw), base64.b64encode(b":" + raw), base64.b64encode(raw + b":")]


def scrape(client: httpx.Client, url: str, prefix: str) -> float:
    text = client.get(url).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(prefix))


# --- constant-time comparison ---------------------------------------------------------------------------


class CountingCompare:
    """Stands in for ``hmac`` in greenq.ingress.auth: records every comparison, answers like the real one."""

    def __init__(self) -> None:
        self.calls: list[tuple[bytes, bytes]] = []

    def compare_digest(self, left: bytes, right: bytes) -> bool:
        self.calls.append((left, right))
        return hmac.compare_digest(left, right)


@pytest.fixture
def counting(monkeypatch: pytest.MonkeyPatch) -> CountingCompare:
    compare = CountingCompare()
    monkeypatch.setattr(greenq.ingress.auth, "hmac", SimpleNamespace(compare_digest=compare.compare_digest))
    return compare


token_lists = st.lists(
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=8, max_size=40),
    min_size=1,
    max_size=8,
    unique=True,
)


@settings(max_examples=200, deadline=None, database=None)
@given(
    tokens=token_lists,
    position=st.integers(min_value=0, max_value=8),
    prefix=st.sampled_from(["", "Bearer ", "basic "]),
)
def test_every_token_is_compared_with_compare_digest_wherever_the_match_is(
    tokens: list[str], position: int, prefix: str
) -> None:
    compare = CountingCompare()
    names = [f"instance-{index}" for index in range(len(tokens))]
    auth = TokenAuthenticator({name: SecretStr(token) for name, token in zip(names, tokens, strict=True)})
    match = position % (len(tokens) + 1)  # len(tokens) means: no match
    sent = tokens[match] if match < len(tokens) else "no-such-token-" + "z" * 20
    found: str | None = None
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(greenq.ingress.auth, "hmac", SimpleNamespace(compare_digest=compare.compare_digest))
        with contextlib.suppress(Unauthorized):
            found = auth.authenticate([prefix + sent])

    candidates = 2 if prefix else 1
    assert len(compare.calls) == len(tokens) * candidates
    compared = [right.decode() for _, right in compare.calls]
    assert sorted(compared) == sorted(tokens * candidates)
    assert found == (names[match] if match < len(tokens) else None)


def test_the_app_compares_every_configured_token(
    counting: CountingCompare, ingress_settings: IngressSettings, redis_conn: Redis
) -> None:
    tokens = {f"instance-{index}": SecretStr(f"token-number-{index}-{'x' * index}") for index in range(5)}
    settings_ = ingress_settings.model_copy(update={"tokens": tokens})
    with TestClient(create_app(settings_), client=("127.0.0.1", 1)) as client:
        for sent, status in [
            ("token-number-0-", 200),  # first
            ("token-number-2-xx", 200),  # middle
            ("token-number-4-xxxx", 200),  # last
            ("token-number-9", 401),  # none
        ]:
            counting.calls.clear()
            response = client.post(WEBHOOK, content=SAMPLE, headers={"Authorization": sent})
            assert response.status_code == status
            assert sorted(right for _, right in counting.calls) == sorted(
                secret.get_secret_value().encode() for secret in tokens.values()
            )
