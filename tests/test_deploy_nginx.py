"""The nginx edge config: every rendering passes ``nginx -t``, and each directive stands in the block it
must be in (parsed, not matched as text). tests/test_deploy_nginx_live.py runs it."""

from __future__ import annotations

import re
from ipaddress import ip_address
from pathlib import Path
from typing import Any

import orjson
import pytest

from greenq.core.settings import DEFAULT_BODY_CAP_BYTES, OVER_CAP_PATH
from greenq.local.nginx_config import (
    DEFAULT_WEBHOOK_PATH,
    GREEN_API_SOURCE_IPS,
    NginxConfigError,
    TlsListener,
    render_compose_config,
    render_nginx_config,
)
from greenq.local.procs import free_port
from tests.support.deploy_files import COMMITTED_NGINX_CONF, ROOT
from tests.support.live_nginx import nginx_test, render_local, self_signed
from tests.support.nginx_conf import Directive, parse

UPSTREAM = "greenq_ingress"


def proxied_locations(config: Directive) -> list[Directive]:
    """The webhook location and the over-cap refusal location: the two that reach an ingress."""
    server = config.one("http").one("server")
    return [server.one("location", "^~", DEFAULT_WEBHOOK_PATH), server.one("location", "@greenq_over_cap")]


def test_the_parser_reads_blocks_quotes_and_comments() -> None:
    config = parse("a 1;  # x { ;\nb \"q;{\" 'r s' { c; d { e f; } }\n")

    assert config.block == (
        Directive("a", ("1",)),
        Directive("b", ("q;{", "r s"), (Directive("c"), Directive("d", (), (Directive("e", ("f",)),)))),
    )
    with pytest.raises(AssertionError):
        parse("a { b; ")
    with pytest.raises(AssertionError):
        parse("a b")


def test_local_rendering_passes_nginx_t(tmp_path: Path) -> None:
    result = nginx_test(render_local(tmp_path, free_port(), [free_port(), free_port()]), tmp_path)

    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


def test_tls_rendering_passes_nginx_t_and_adds_an_ssl_listener(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    tls = TlsListener(listen=f"127.0.0.1:{free_port()}", certificate=str(cert), certificate_key=str(key))

    config = render_local(tmp_path, free_port(), [free_port()], tls=tls)
    result = nginx_test(config, tmp_path)

    assert result.returncode == 0, result.stderr
    server = parse(config).one("http").one("server")
    assert server.one("listen", tls.listen).args == (tls.listen, "ssl")
    assert server.value("ssl_certificate") == (str(cert),)
    assert server.value("ssl_certificate_key") == (str(key),)


def test_compose_rendering_resolves_ingress_replicas_through_docker_dns() -> None:
    config = parse(render_compose_config())
    http = config.one("http")
    upstream = http.one("upstream", UPSTREAM)

    assert http.value("resolver")[:2] == ("127.0.0.11", "valid=5s")
    assert upstream.value("zone")[0] == UPSTREAM
    assert re.fullmatch(r"\d+k", upstream.value("zone")[1])
    assert upstream.value("server")[:2] == ("ingress:8080", "resolve")
    assert upstream.value("keepalive") == ("128",)
    assert http.one("server").value("listen") == ("8080",)
    assert config.value("pid") == ("/tmp/nginx.pid",)
    assert http.value("access_log") == ("/dev/stdout", "greenq_json", "buffer=4k", "flush=1s")


def test_static_rendering_has_no_resolve(tmp_path: Path) -> None:
    config = parse(render_local(tmp_path, 8000, [8001, 8002]))
    servers = config.one("http").one("upstream", UPSTREAM).all("server")

    assert not [directive for directive in config.walk() if directive.name == "resolver"]
    assert [server.args[0] for server in servers] == ["127.0.0.1:8001", "127.0.0.1:8002"]
    assert all("max_fails=1" in server.args and "resolve" not in server.args for server in servers)


def test_both_proxied_locations_reach_the_ingress_with_the_client_address_replaced() -> None:
    for location in proxied_locations(parse(render_compose_config())):
        headers = {directive.args[0]: directive.args[1:] for directive in location.all("proxy_set_header")}
        assert location.value("proxy_pass") == (f"http://{UPSTREAM}",), location.args
        assert headers["X-Forwarded-For"] == ("$remote_addr",), location.args
        assert headers["X-Real-IP"] == ("$remote_addr",), location.args
        assert location.value("proxy_connect_timeout") == ("2s",), location.args


def test_rendering_carries_failover_limits_and_logging() -> None:
    config = parse(render_compose_config())
    http = config.one("http")
    webhook, over_cap = proxied_locations(config)

    assert webhook.value("proxy_next_upstream") == (
        "error",
        "timeout",
        "http_502",
        "http_503",
        "non_idempotent",
    )
    assert re.fullmatch(r"\d+", webhook.value("proxy_next_upstream_tries")[0])
    assert webhook.value("proxy_read_timeout") == ("30s",)
    assert webhook.value("error_page") == ("413", "=", "@greenq_over_cap")
    assert webhook.value("limit_req")[0] == "zone=greenq_per_client"
    assert over_cap.value("rewrite") == ("^", OVER_CAP_PATH, "break")
    assert over_cap.value("proxy_pass_request_body") == ("off",)
    assert http.value("client_max_body_size") == (str(DEFAULT_BODY_CAP_BYTES),)
    assert http.value("client_body_timeout") == ("10s",)
    assert http.value("client_header_timeout") == ("10s",)
    assert http.value("limit_req_status") == ("429",)
    assert http.one("limit_req_zone").args[1] == "zone=greenq_per_client:10m"


def test_green_api_addresses_are_exempt_from_the_rate_limit() -> None:
    geo = parse(render_compose_config()).one("http").one("geo", "$greenq_rate_limited")

    assert geo.value("default") == ("1",)
    exempt = {directive.name for directive in geo.block or () if directive.args == ("0",)}
    assert exempt == {f"{address}/32" for address in GREEN_API_SOURCE_IPS}


def test_the_access_log_format_is_one_json_object() -> None:
    log_format = parse(render_compose_config()).one("http").one("log_format", "greenq_json")

    assert log_format.args[1] == "escape=json"
    line = re.sub(r"\$\w+", "0", "".join(log_format.args[2:]))  # what nginx writes, variables filled in
    assert set(orjson.loads(line)) >= {"time", "remote_addr", "status", "uri", "upstream_status"}


def test_readme_allowlist_is_the_rate_limit_exempt_list() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    [listed] = re.findall(r"`GREENQ_ALLOWED_IPS=([0-9.,]+)`", readme)

    assert listed.split(",") == sorted(GREEN_API_SOURCE_IPS, key=ip_address)


def test_committed_nginx_conf_equals_a_fresh_render() -> None:
    assert COMMITTED_NGINX_CONF.read_text(encoding="utf-8") == render_compose_config(), (
        "deploy/nginx/nginx.conf is stale: "
        "python -m greenq.local.nginx_config --compose > deploy/nginx/nginx.conf"
    )


@pytest.mark.parametrize(
    ("field_name", "value"),
    [
        ("upstreams", ["127.0.0.1:1; include /etc/passwd"]),
        ("upstreams", []),
        ("access_log", "/tmp/a log"),
        ("exempt_cidrs", ["not-an-ip"]),
        ("webhook_path", "no-leading-slash/"),
        ("burst", 0),
    ],
)
def test_renderer_refuses_unsafe_parameters(field_name: str, value: object) -> None:
    params: dict[str, Any] = {
        "listen": "8080",
        "upstreams": ["ingress:8080"],
        "resolver": None,
        "body_cap_bytes": 1024,
        "rate_per_second": 10,
        "burst": 10,
        "exempt_cidrs": [],
        "access_log": "/dev/stdout",
        "error_log": "/dev/stderr",
        "pid_file": "/tmp/nginx.pid",
        "temp_dir": "/tmp",
    }
    params[field_name] = value

    with pytest.raises(NginxConfigError):
        render_nginx_config(**params)
