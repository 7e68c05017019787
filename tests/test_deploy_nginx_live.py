"""A live nginx from the local rendering, in front of two stand-in upstreams: what it actually does with
requests (balancing, forwarding headers, the over-cap refusal, failover, rate limits, TLS, its log)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest

from greenq.core.settings import OVER_CAP_PATH
from greenq.local.nginx_config import DEFAULT_WEBHOOK_PATH, TlsListener
from greenq.local.procs import free_port
from tests.support.live_nginx import RunningNginx, StartNginx, Upstream, self_signed, start_local_nginx


@pytest.fixture
def upstreams() -> Iterator[tuple[Upstream, Upstream]]:
    pair = (Upstream("a").start(), Upstream("b").start())
    yield pair
    for upstream in pair:
        upstream.stop()


@pytest.fixture
def start_nginx(tmp_path: Path) -> Iterator[StartNginx]:
    """Start nginx (foreground) from a local rendering; every instance is stopped with SIGQUIT."""
    started: list[RunningNginx] = []

    def start(ports: Sequence[int], **render_options: Any) -> RunningNginx:
        runtime_dir = tmp_path / f"nginx-{len(started)}"
        started.append(start_local_nginx(runtime_dir, ports, **render_options))
        return started[-1]

    yield start
    for running in started:
        running.stop()


def test_nginx_spreads_requests_over_every_upstream(
    start_nginx: StartNginx, upstreams: tuple[Upstream, Upstream]
) -> None:
    nginx = start_nginx([upstream.port for upstream in upstreams])

    statuses = [nginx.post_webhook()[0] for _ in range(10)]

    assert statuses == [200] * 10
    assert all(len(upstream.hits) >= 2 for upstream in upstreams), [len(u.hits) for u in upstreams]


def test_nginx_replaces_client_supplied_forwarding_headers(
    start_nginx: StartNginx, upstreams: tuple[Upstream, Upstream]
) -> None:
    nginx = start_nginx([upstream.port for upstream in upstreams])

    status, body = nginx.post_webhook(headers={"X-Forwarded-For": "6.6.6.6", "X-Real-IP": "6.6.6.6"})

    assert status == 200
    seen = json.loads(body)
    assert seen["x-forwarded-for"] == "127.0.0.1"
    assert seen["x-real-ip"] == "127.0.0.1"


def test_nginx_forwards_an_over_cap_refusal_without_its_body_to_be_counted(
    start_nginx: StartNginx, upstreams: tuple[Upstream, Upstream]
) -> None:
    nginx = start_nginx([upstream.port for upstream in upstreams], body_cap_bytes=1024)

    within = nginx.post_webhook(b"x" * 1024)[0]
    over = nginx.post_webhook(b"x" * 1025, headers={"Authorization": "t0ken"})[0]

    hits = sorted((hit for upstream in upstreams for hit in upstream.hits), key=lambda hit: hit["path"])
    assert (within, over) == (200, 200)  # the stand-in answers 200; the real ingress answers 413
    assert [(hit["method"], hit["path"], hit["body_length"]) for hit in hits] == [
        ("POST", f"{DEFAULT_WEBHOOK_PATH}abc", "1024"),
        ("POST", OVER_CAP_PATH, "0"),
    ]
    assert (hits[1]["declared-length"], hits[1]["authorization"]) == ("1025", "t0ken")
    assert hits[1]["x-forwarded-for"] == "127.0.0.1"


def test_nginx_answers_healthz_itself_and_proxies_only_the_webhook_path(
    start_nginx: StartNginx, upstreams: tuple[Upstream, Upstream]
) -> None:
    nginx = start_nginx([upstream.port for upstream in upstreams])

    health = nginx.request("GET", "/healthz")
    metrics = nginx.request("GET", "/metrics")[0]

    assert health == (200, b"ok\n")
    assert metrics == 404
    assert all(not upstream.hits for upstream in upstreams)


def test_nginx_fails_over_when_an_upstream_stops(
    start_nginx: StartNginx, upstreams: tuple[Upstream, Upstream]
) -> None:
    alive, dead = upstreams
    nginx = start_nginx([alive.port, dead.port])
    assert [nginx.post_webhook()[0] for _ in range(4)] == [200] * 4
    hits_before = len(dead.hits)

    dead.stop()
    statuses = [nginx.post_webhook()[0] for _ in range(10)]

    assert statuses == [200] * 10
    assert len(dead.hits) == hits_before
    assert all(hit["upstream"] == "a" for hit in alive.hits)


def test_nginx_retries_a_post_answered_503_on_another_upstream(
    start_nginx: StartNginx, upstreams: tuple[Upstream, Upstream]
) -> None:
    healthy, unavailable = upstreams
    unavailable.status = 503  # an ingress that could not reach Redis: nothing was enqueued
    nginx = start_nginx([healthy.port, unavailable.port])

    statuses = [nginx.post_webhook()[0] for _ in range(6)]

    assert statuses == [200] * 6
    assert unavailable.hits, "the 503 upstream was never tried"
    assert len(healthy.hits) == 6


def test_nginx_rate_limits_clients_outside_the_exempt_list(
    start_nginx: StartNginx, upstreams: tuple[Upstream, Upstream]
) -> None:
    ports = [upstream.port for upstream in upstreams]
    limited = start_nginx(ports, rate_per_second=1, burst=1, exempt_cidrs=[])
    exempt = start_nginx(ports, rate_per_second=1, burst=1, exempt_cidrs=["127.0.0.0/8"])

    limited_statuses = [limited.post_webhook()[0] for _ in range(5)]
    exempt_statuses = [exempt.post_webhook()[0] for _ in range(5)]

    assert limited_statuses[:2] == [200, 200]
    assert 429 in limited_statuses
    assert exempt_statuses == [200] * 5


def test_nginx_serves_the_webhook_and_healthz_over_tls_with_the_configured_certificate(
    start_nginx: StartNginx, upstreams: tuple[Upstream, Upstream], tmp_path: Path
) -> None:
    cert, key = self_signed(tmp_path)
    tls_port = free_port()
    tls = TlsListener(listen=f"127.0.0.1:{tls_port}", certificate=str(cert), certificate_key=str(key))
    nginx = start_nginx([upstream.port for upstream in upstreams], tls=tls)

    health = nginx.request("GET", "/healthz", tls=(tls_port, cert))
    status, body = nginx.request("POST", f"{DEFAULT_WEBHOOK_PATH}abc", b"{}", tls=(tls_port, cert))

    assert health == (200, b"ok\n")
    assert status == 200
    assert json.loads(body)["path"] == f"{DEFAULT_WEBHOOK_PATH}abc"


def test_nginx_logs_one_json_object_per_request_without_the_query(
    start_nginx: StartNginx, upstreams: tuple[Upstream, Upstream]
) -> None:
    nginx = start_nginx([upstream.port for upstream in upstreams])

    nginx.request("POST", DEFAULT_WEBHOOK_PATH, b"{}", headers={"X-Forwarded-For": '"\\broken'})
    nginx.request("GET", "/metrics?token=secret-in-the-query")
    nginx.stop()  # flushes and closes the log

    entries = [orjson.loads(line) for line in (nginx.runtime_dir / "access.log").read_bytes().splitlines()]
    # Each nginx worker buffers its own lines (access_log buffer=), so two workers' lines need not be in
    # request order in the file.
    assert sorted((entry["method"], entry["uri"], entry["status"]) for entry in entries) == [
        ("GET", "other", 404),
        ("POST", DEFAULT_WEBHOOK_PATH, 200),
    ]
    assert all(entry["remote_addr"] == "127.0.0.1" for entry in entries)
