"""Deploy files are code: each one is parsed, validated and, where a tool exists, run.

nginx (``nginx -t`` and a live nginx in front of two upstreams), Prometheus (``promtool``), the compose
file (compose-spec JSON schema plus our rules), Grafana and alert expressions (only metrics the code
exports), the Kubernetes manifests and the Dockerfile. nginx and promtool are required: a run without
them fails with a hint, it does not skip.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import ip_address
from pathlib import Path
from typing import Any

import fakeredis
import pytest
import yaml
from jsonschema import Draft201909Validator
from prometheus_client import CollectorRegistry
from pydantic_settings import BaseSettings

from greenq.core import keys
from greenq.core.settings import (
    DEFAULT_BODY_CAP_BYTES,
    DEFAULT_MAX_BODY_BYTES,
    OVER_CAP_PATH,
    IngressSettings,
    WorkerSettings,
)
from greenq.ingress.metrics import IngressMetrics
from greenq.local.nginx_config import (
    DEFAULT_WEBHOOK_PATH,
    GREEN_API_SOURCE_IPS,
    NginxConfigError,
    TlsListener,
    render_compose_config,
    render_nginx_config,
)
from greenq.local.redis_server import DEFAULT_MAXMEMORY
from greenq.pull.reconcile_metrics import ReconcileMetrics
from greenq.workers.metrics import RedisStateCollector, WorkerMetrics

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
COMPOSE_SCHEMA = Path(__file__).parent / "fixtures" / "compose-spec.json"
COMMITTED_NGINX_CONF = DEPLOY / "nginx" / "nginx.conf"
PROMETHEUS_DIR = DEPLOY / "prometheus"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "greenq.json"
K8S_DIR = DEPLOY / "k8s"
DOCKERFILE = ROOT / "Dockerfile"

SECRET_VARIABLES = ("REDIS_PASSWORD", "GREENQ_TOKENS", "GRAFANA_ADMIN_PASSWORD")
SCALABLE_SERVICES = ("ingress", "worker")
GREENQ_IMAGE = "greenq"
DEADLINE_SECONDS = 10.0

Json = Any


# --- shared helpers ----------------------------------------------------------------------------------


def require_binary(name: str, package: str) -> str:
    """Path of a required tool; a missing one fails the test (CI installs it)."""
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin:/sbin:/bin")
    if path is None:
        pytest.fail(f"`{name}` not found: install it (apt-get install {package}); CI installs it")
    return path


def run_tool(args: Sequence[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=60, check=False)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_until(condition: Callable[[], bool], what: str, timeout: float = DEADLINE_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


def load_yaml(path: Path) -> Json:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


class FakeRedisWithInfo(fakeredis.FakeRedis):
    """fakeredis has no INFO; the worker's collector reads ``INFO memory`` for the memory gauges."""

    def info(self, section: str | None = None, *args: str, **kwargs: Any) -> dict[str, Any]:
        return {"used_memory": 1, "maxmemory": 2, "maxmemory_policy": "noeviction"}


def exported_series() -> frozenset[str]:
    """Every series name the code exports, from the real metric objects (counter -> ``_total``, ...)."""
    registry = CollectorRegistry()
    IngressMetrics.create(registry)
    WorkerMetrics.create(registry, known_types=())
    ReconcileMetrics.create(registry, ["first"]).last_success.labels(instance="first").set(1)
    families = [*registry.collect(), *RedisStateCollector(FakeRedisWithInfo()).collect()]
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}
    return frozenset(family.name + suffix for family in families for suffix in suffixes[family.type])


def greenq_metric_tokens(expr: str) -> set[str]:
    return set(re.findall(r"\bgreenq_[a-z_]+\b", expr))


def settings_env_names(settings: type[BaseSettings]) -> frozenset[str]:
    """Environment variables a settings class reads (``GREENQ_`` + field name)."""
    prefix = str(settings.model_config.get("env_prefix", ""))
    return frozenset(f"{prefix}{name}".upper() for name in settings.model_fields)


# --- nginx: rendering ------------------------------------------------------------------------------


def render_local(
    runtime_dir: Path,
    listen_port: int,
    upstream_ports: Sequence[int],
    *,
    body_cap_bytes: int = 4096,
    rate_per_second: int = 1000,
    burst: int = 1000,
    exempt_cidrs: Sequence[str] = GREEN_API_SOURCE_IPS,
    tls: TlsListener | None = None,
) -> str:
    """The static-topology config with every writable path under ``runtime_dir``."""
    return render_nginx_config(
        listen=f"127.0.0.1:{listen_port}",
        upstreams=[f"127.0.0.1:{port}" for port in upstream_ports],
        resolver=None,
        body_cap_bytes=body_cap_bytes,
        rate_per_second=rate_per_second,
        burst=burst,
        exempt_cidrs=exempt_cidrs,
        access_log=str(runtime_dir / "access.log"),
        error_log=str(runtime_dir / "error.log"),
        pid_file=str(runtime_dir / "nginx.pid"),
        temp_dir=str(runtime_dir),
        tls=tls,
    )


def nginx_test(config: str, runtime_dir: Path) -> subprocess.CompletedProcess[str]:
    nginx = require_binary("nginx", "nginx")
    conf = runtime_dir / "nginx.conf"
    conf.write_text(config, encoding="utf-8")
    return run_tool([nginx, "-t", "-c", str(conf), "-p", str(runtime_dir)])


def test_local_rendering_passes_nginx_t(tmp_path: Path) -> None:
    result = nginx_test(render_local(tmp_path, free_port(), [free_port(), free_port()]), tmp_path)

    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


def test_tls_rendering_passes_nginx_t(tmp_path: Path) -> None:
    openssl = require_binary("openssl", "openssl")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    self_signed = ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost"]
    made = run_tool([openssl, *self_signed, "-keyout", str(key), "-out", str(cert)])
    assert made.returncode == 0, made.stderr
    tls = TlsListener(listen=f"127.0.0.1:{free_port()}", certificate=str(cert), certificate_key=str(key))

    config = render_local(tmp_path, free_port(), [free_port()], tls=tls)
    result = nginx_test(config, tmp_path)

    assert result.returncode == 0, result.stderr
    assert f"listen {tls.listen} ssl;" in config


def test_compose_rendering_resolves_ingress_replicas_through_docker_dns() -> None:
    config = render_compose_config()

    assert "resolver 127.0.0.11 valid=5s" in config
    assert re.search(r"upstream greenq_ingress \{\s+zone greenq_ingress \d+k;", config)
    assert "server ingress:8080 resolve " in config
    assert "keepalive 32;" in config
    assert "listen 8080;" in config
    assert "pid /tmp/nginx.pid;" in config
    assert "access_log /dev/stdout greenq_json;" in config


def test_static_rendering_has_no_resolve(tmp_path: Path) -> None:
    config = render_local(tmp_path, 8000, [8001, 8002])

    assert "resolve" not in config.replace("resolver", "")
    assert "server 127.0.0.1:8001 max_fails=1" in config
    assert "server 127.0.0.1:8002 max_fails=1" in config


def test_rendering_carries_failover_limits_and_logging() -> None:
    config = render_compose_config()

    assert "proxy_next_upstream error timeout http_502 http_503 non_idempotent;" in config
    assert re.search(r"proxy_next_upstream_tries \d+;", config)
    assert f"client_max_body_size {DEFAULT_BODY_CAP_BYTES};" in config
    assert "error_page 413 = @greenq_over_cap;" in config
    assert f"rewrite ^ {OVER_CAP_PATH} break;" in config
    assert "proxy_connect_timeout 2s;" in config
    assert "proxy_read_timeout 30s;" in config
    assert "client_body_timeout 10s;" in config
    assert "client_header_timeout 10s;" in config
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in config
    assert "proxy_set_header X-Real-IP $remote_addr;" in config
    assert "limit_req_status 429;" in config
    assert "log_format greenq_json escape=json" in config
    for address in GREEN_API_SOURCE_IPS:
        assert f"{address}/32 0;" in config


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


# --- nginx: a live instance in front of two upstreams ------------------------------------------------


@dataclass
class Upstream:
    """A tiny HTTP server standing in for one ingress replica; records every request it gets."""

    name: str
    status: int = 200
    hits: list[dict[str, str]] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None
    thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        assert self.server is not None
        port: int = self.server.server_address[1]
        return port

    def start(self) -> Upstream:
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                self.rfile.read(length)
                seen = {
                    "upstream": upstream.name,
                    "method": self.command,
                    "path": self.path,
                    "body_length": str(length),
                    "x-forwarded-for": self.headers.get("X-Forwarded-For", ""),
                    "x-real-ip": self.headers.get("X-Real-IP", ""),
                    "authorization": self.headers.get("Authorization", ""),
                    "declared-length": self.headers.get("X-Greenq-Declared-Length", ""),
                }
                upstream.hits.append(seen)
                body = json.dumps(seen).encode()
                self.send_response(upstream.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name=f"upstream-{self.name}")
        self.thread.start()
        return self

    def stop(self) -> None:
        if self.server is None:
            return
        self.server.shutdown()
        self.server.server_close()
        if self.thread is not None:
            self.thread.join(timeout=DEADLINE_SECONDS)
        self.server = None


@dataclass
class RunningNginx:
    port: int
    process: subprocess.Popen[bytes]
    runtime_dir: Path

    def request(
        self, method: str, path: str, body: bytes = b"", headers: Mapping[str, str] | None = None
    ) -> tuple[int, bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=DEADLINE_SECONDS)
        try:
            connection.request(method, path, body=body, headers=dict(headers or {}))
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def post_webhook(
        self, body: bytes = b'{"typeWebhook":"x"}', headers: Mapping[str, str] | None = None
    ) -> tuple[int, bytes]:
        return self.request("POST", f"{DEFAULT_WEBHOOK_PATH}abc", body, headers)

    def answers_healthz(self) -> bool:
        if self.process.poll() is not None:
            _, stderr = self.process.communicate()
            pytest.fail(f"nginx exited with {self.process.returncode}: {stderr.decode(errors='replace')}")
        try:
            return self.request("GET", "/healthz")[0] == 200
        except OSError:
            return False

    def stop(self) -> None:
        pid_file = self.runtime_dir / "nginx.pid"
        if self.process.poll() is None:
            master = int(pid_file.read_text().strip()) if pid_file.exists() else self.process.pid
            os.kill(master, signal.SIGQUIT)
            try:
                self.process.wait(timeout=DEADLINE_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.process.communicate(timeout=DEADLINE_SECONDS)


StartNginx = Callable[..., RunningNginx]


@pytest.fixture
def upstreams() -> Iterator[tuple[Upstream, Upstream]]:
    pair = (Upstream("a").start(), Upstream("b").start())
    yield pair
    for upstream in pair:
        upstream.stop()


@pytest.fixture
def start_nginx(tmp_path: Path) -> Iterator[StartNginx]:
    """Start nginx (foreground) from a local rendering; every instance is stopped with SIGQUIT."""
    nginx = require_binary("nginx", "nginx")
    started: list[RunningNginx] = []

    def start(ports: Sequence[int], **render_options: Any) -> RunningNginx:
        runtime_dir = tmp_path / f"nginx-{len(started)}"
        runtime_dir.mkdir()
        port = free_port()
        conf = runtime_dir / "nginx.conf"
        conf.write_text(render_local(runtime_dir, port, ports, **render_options), encoding="utf-8")
        process = subprocess.Popen(
            [nginx, "-c", str(conf), "-p", str(runtime_dir), "-g", "daemon off;"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        running = RunningNginx(port=port, process=process, runtime_dir=runtime_dir)
        started.append(running)
        wait_until(running.answers_healthz, "nginx to answer /healthz")
        return running

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


# --- Prometheus ---------------------------------------------------------------------------------------


def test_prometheus_config_passes_promtool() -> None:
    promtool = require_binary("promtool", "prometheus")

    result = run_tool([promtool, "check", "config", "prometheus.yml"], cwd=PROMETHEUS_DIR)

    assert result.returncode == 0, result.stdout + result.stderr


def test_alert_rules_pass_promtool() -> None:
    promtool = require_binary("promtool", "prometheus")

    result = run_tool([promtool, "check", "rules", "alerts.yml"], cwd=PROMETHEUS_DIR)

    assert result.returncode == 0, result.stdout + result.stderr


def test_alert_unit_tests_pass_and_cover_unknown_type_and_worker_down() -> None:
    promtool = require_binary("promtool", "prometheus")
    cases = load_yaml(PROMETHEUS_DIR / "alerts_test.yml")["tests"]
    proven = {
        check["alertname"]
        for case in cases
        for check in case.get("alert_rule_test", [])
        if check["exp_alerts"]
    }

    result = run_tool([promtool, "test", "rules", "alerts_test.yml"], cwd=PROMETHEUS_DIR)

    assert result.returncode == 0, result.stdout + result.stderr
    assert {
        "GreenqUnknownNotificationType",
        "GreenqNoWorkerScraped",
        "GreenqRedisMemoryHigh",
        "GreenqRedisMemoryFull",
        "GreenqFailedJobs",
        "GreenqNotificationsTooLarge",
        "GreenqIngressBodyOverCap",
    } <= proven


def alert_rules() -> list[dict[str, Any]]:
    groups = load_yaml(PROMETHEUS_DIR / "alerts.yml")["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_every_alert_has_a_severity_summary_and_description() -> None:
    for rule in alert_rules():
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
        assert rule["annotations"]["summary"].strip(), rule["alert"]
        assert rule["annotations"]["description"].strip(), rule["alert"]


def test_alerts_cover_the_operational_failure_modes() -> None:
    exprs = {rule["alert"]: rule["expr"] for rule in alert_rules()}
    joined = "\n".join(exprs.values())

    assert 'greenq_notifications_total{outcome="unknown_type"}' in joined
    assert 'greenq_notifications_total{outcome="invalid"}' in joined
    assert 'greenq_notifications_total{outcome="too_large"}' in joined
    assert 'greenq_ingress_requests_total{outcome="over_cap"}' in joined
    assert "greenq_dead_letters" in joined
    assert "greenq_queue_depth" in joined
    assert "greenq_queue_oldest_age_seconds" in joined
    assert 'absent(up{job="worker"} == 1)' in joined
    assert "greenq_workers_alive" in joined
    assert 'greenq_ingress_requests_total{outcome="unavailable"}' in joined
    assert "greenq_redis_up == 0" in joined
    assert "greenq_redis_memory_used_bytes" in joined
    assert "greenq_failed_jobs" in joined


def test_alert_expressions_use_only_exported_metrics() -> None:
    exported = exported_series()
    used = {token for rule in alert_rules() for token in greenq_metric_tokens(rule["expr"])}

    assert used, "no greenq metric found in alerts.yml"
    assert used <= exported, f"unknown metrics: {sorted(used - exported)}"


def test_prometheus_discovers_every_ingress_and_worker_replica_by_dns() -> None:
    config = load_yaml(PROMETHEUS_DIR / "prometheus.yml")
    services = compose_services(interpolated_compose())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    expected_ports = {
        "ingress": int(services["ingress"]["environment"]["GREENQ_PORT"]),
        "worker": int(services["worker"]["environment"]["GREENQ_METRICS_PORT"]),
    }

    for name, port in expected_ports.items():
        (sd,) = jobs[name]["dns_sd_configs"]
        assert sd["names"] == [name]
        assert sd["type"] == "A"
        assert sd["port"] == port
    assert config["rule_files"] == ["alerts.yml"]


# --- docker-compose.yml -------------------------------------------------------------------------------

_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)


@dataclass(frozen=True)
class Variable:
    name: str
    op: str
    arg: str


def compose_variables(text: str) -> list[Variable]:
    found = []
    for match in _VARIABLE.finditer(text):
        if match["escaped"]:
            continue
        found.append(Variable(match["name"] or match["bare"], match["op"] or "", match["arg"] or ""))
    return found


def interpolate(value: str, env: Mapping[str, str]) -> str:
    """Compose's interpolation: ``${VAR}``, ``${VAR:-default}``, ``${VAR-d}``, ``${VAR:?err}``, ``$$``."""

    def replace(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        name, op, arg = match["name"] or match["bare"], match["op"] or "", match["arg"] or ""
        current = env.get(name)
        missing = current is None or (op.startswith(":") and current == "")
        if op.endswith("?") and missing:
            raise KeyError(f"required variable {name} is unset: {arg}")
        if op.endswith("-") and missing:
            return arg
        return current or ""

    return _VARIABLE.sub(replace, value)


def interpolate_tree(node: Json, env: Mapping[str, str]) -> Json:
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, list):
        return [interpolate_tree(item, env) for item in node]
    if isinstance(node, dict):
        return {key: interpolate_tree(value, env) for key, value in node.items()}
    return node


def env_example() -> dict[str, str]:
    pairs = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            pairs[name.strip()] = value.strip()
    return pairs


def raw_compose() -> Json:
    return load_yaml(COMPOSE_FILE)


def interpolated_compose() -> Json:
    """The compose model as `docker compose config` would see it with .env copied from .env.example."""
    return interpolate_tree(raw_compose(), env_example())


def compose_services(model: Json) -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = model["services"]
    return services


def command_args(service: Mapping[str, Any]) -> list[str]:
    command = service.get("command", [])
    return command.split() if isinstance(command, str) else [str(part) for part in command]


def compose_validator() -> Draft201909Validator:
    """The vendored schema declares draft 2019-09 under a non-canonical URL, so the draft is named here."""
    schema = json.loads(COMPOSE_SCHEMA.read_text(encoding="utf-8"))
    Draft201909Validator.check_schema(schema)
    return Draft201909Validator(schema)


def test_compose_file_matches_the_compose_spec_schema() -> None:
    validator = compose_validator()

    errors = [
        f"{list(error.absolute_path)}: {error.message}"
        for error in validator.iter_errors(interpolated_compose())
    ]

    assert errors == []


def test_compose_schema_rejects_an_unknown_service_key() -> None:
    broken = interpolated_compose()
    broken["services"]["redis"]["helthcheck"] = {}

    assert not compose_validator().is_valid(broken)


def test_every_compose_service_has_a_healthcheck_and_restart_policy() -> None:
    for name, service in compose_services(raw_compose()).items():
        healthcheck = service.get("healthcheck", {})
        assert healthcheck.get("test"), f"{name} has no healthcheck"
        assert not healthcheck.get("disable"), f"{name} disables its healthcheck"
        assert service.get("restart") in {"unless-stopped", "always", "on-failure"}, name


def test_redis_is_durable_bounded_and_password_protected() -> None:
    raw = compose_services(raw_compose())["redis"]
    redis = compose_services(interpolated_compose())["redis"]
    args = command_args(redis)

    def option(flag: str) -> str:
        return args[args.index(flag) + 1]

    assert option("--appendonly") == "yes"
    assert option("--appendfsync") == "always"
    assert option("--maxmemory-policy") == "noeviction"
    assert option("--maxmemory") == DEFAULT_MAXMEMORY  # the README's sizing, also greenq up's default
    assert command_args(raw)[command_args(raw).index("--requirepass") + 1].startswith("${REDIS_PASSWORD:?")
    assert "redis-data:/data" in redis["volumes"]
    assert "redis-data" in raw_compose()["volumes"]


@pytest.mark.parametrize("name", SCALABLE_SERVICES)
def test_ingress_and_worker_scale_with_replicas(name: str) -> None:
    service = compose_services(raw_compose())[name]

    assert "container_name" not in service
    assert "ports" not in service
    assert isinstance(service["deploy"]["replicas"], int)
    assert service["deploy"]["replicas"] >= 2


def test_only_nginx_publishes_ports() -> None:
    publishing = {name for name, service in compose_services(raw_compose()).items() if service.get("ports")}

    assert publishing == {"nginx"}


def test_secrets_are_required_variables_without_defaults() -> None:
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    uses = [variable for variable in compose_variables(text) if variable.name in SECRET_VARIABLES]

    assert {variable.name for variable in uses} == set(SECRET_VARIABLES)
    assert all(variable.op == ":?" and variable.arg for variable in uses), uses


def test_compose_contains_no_literal_secrets() -> None:
    secretish = re.compile(r"(PASSWORD|TOKENS?|SECRET|_AUTH)$")
    for name, service in compose_services(raw_compose()).items():
        for key, value in service.get("environment", {}).items():
            if secretish.search(key):
                assert re.fullmatch(r"\$\{[A-Z_]+:\?[^}]+\}", str(value)), f"{name}.{key} is not ${{VAR:?}}"
        for key, value in service.get("environment", {}).items():
            if "redis://" in str(value):
                assert ":${REDIS_PASSWORD:?" in str(value), f"{name}.{key} embeds a literal password"


def test_env_example_documents_every_variable_with_placeholder_secrets() -> None:
    documented = env_example()
    used = {variable.name for variable in compose_variables(COMPOSE_FILE.read_text(encoding="utf-8"))}

    assert used <= set(documented), f"undocumented: {sorted(used - set(documented))}"
    for name in SECRET_VARIABLES:
        assert "replace-with" in documented[name], f"{name} in .env.example must be a placeholder"


def test_depends_on_waits_for_healthy_services() -> None:
    services = compose_services(raw_compose())
    edges = [
        (name, dep, spec) for name, s in services.items() for dep, spec in s.get("depends_on", {}).items()
    ]

    assert edges
    for name, dependency, spec in edges:
        assert spec == {"condition": "service_healthy"}, f"{name} -> {dependency}"
        assert "healthcheck" in services[dependency]
    assert {(name, dep) for name, dep, _ in edges} >= {
        ("ingress", "redis"),
        ("worker", "redis"),
        ("nginx", "ingress"),
    }


def test_compose_images_are_pinned() -> None:
    for name, service in compose_services(interpolated_compose()).items():
        image = service["image"]
        repository, _, tag = image.rpartition(":")
        assert repository, f"{name}: {image} has no tag"
        assert tag != "latest", f"{name}: {image}"
        assert re.search(r"\d", tag), f"{name}: {image} is not a version"
    nginx_tag = compose_services(raw_compose())["nginx"]["image"].split(":")[1]
    nginx_version = tuple(int(part) for part in nginx_tag.split("-")[0].split("."))
    assert nginx_version >= (1, 27, 3), "upstream `resolve` needs nginx >= 1.27.3"


def test_compose_app_services_set_only_variables_the_app_reads() -> None:
    services = compose_services(raw_compose())
    readers: dict[str, type[BaseSettings]] = {"ingress": IngressSettings, "worker": WorkerSettings}

    for name, settings in readers.items():
        assert command_args(services[name]) == ["greenq", name]
        assert set(services[name]["environment"]) <= settings_env_names(settings), name
    assert services["ingress"]["environment"]["GREENQ_HOST"] == "0.0.0.0"
    assert services["worker"]["environment"]["GREENQ_METRICS_HOST"] == "0.0.0.0"


def test_compose_ingress_limits_match_the_nginx_config() -> None:
    environment = compose_services(raw_compose())["ingress"]["environment"]
    config = COMMITTED_NGINX_CONF.read_text(encoding="utf-8")

    assert int(environment["GREENQ_MAX_BODY_BYTES"]) == DEFAULT_MAX_BODY_BYTES
    assert int(environment["GREENQ_BODY_CAP_BYTES"]) == DEFAULT_BODY_CAP_BYTES
    assert f"client_max_body_size {environment['GREENQ_BODY_CAP_BYTES']};" in config
    assert f"location ^~ {environment['GREENQ_WEBHOOK_PATH']} {{" in config
    assert f"server ingress:{environment['GREENQ_PORT']} resolve" in config


def test_compose_mounts_files_that_exist() -> None:
    for name, service in compose_services(raw_compose()).items():
        for volume in service.get("volumes", []):
            source = str(volume).split(":")[0]
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"


# --- Grafana -------------------------------------------------------------------------------------------


def dashboard_exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]


def test_dashboard_queries_only_exported_metrics() -> None:
    exported = exported_series()
    used = {token for expr in dashboard_exprs() for token in greenq_metric_tokens(expr)}

    assert used <= exported, f"unknown metrics: {sorted(used - exported)}"


def test_dashboard_shows_throughput_latency_queue_and_workers() -> None:
    joined = "\n".join(dashboard_exprs())

    assert "sum by (type_webhook, outcome) (rate(greenq_notifications_total" in joined
    for quantile in ("0.5", "0.95", "0.99"):
        assert (
            f"histogram_quantile({quantile}, sum by (le) (rate(greenq_ingress_request_duration_seconds_bucket"
            in joined
        )
    for metric in (
        "greenq_queue_depth",
        "greenq_queue_oldest_age_seconds",
        "greenq_dead_letters",
        "greenq_workers_alive",
        "greenq_ingress_requests_total",
    ):
        assert metric in joined


def test_grafana_provisioning_wires_the_datasource_and_dashboard_folder() -> None:
    provisioning = DEPLOY / "grafana" / "provisioning"
    (datasource,) = load_yaml(provisioning / "datasources" / "prometheus.yml")["datasources"]
    (provider,) = load_yaml(provisioning / "dashboards" / "greenq.yml")["providers"]
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    grafana = compose_services(raw_compose())["grafana"]

    assert datasource["url"] == "http://prometheus:9090"
    assert {panel["datasource"]["uid"] for panel in dashboard["panels"]} == {datasource["uid"]}
    assert f"./deploy/grafana/dashboards:{provider['options']['path']}:ro" in grafana["volumes"]


# --- Kubernetes -----------------------------------------------------------------------------------------


def k8s_documents() -> list[dict[str, Any]]:
    kustomization = load_yaml(K8S_DIR / "kustomization.yaml")
    documents = []
    for resource in kustomization["resources"]:
        text = (K8S_DIR / resource).read_text(encoding="utf-8")
        documents += [document for document in yaml.safe_load_all(text) if document]
    return documents


def k8s_kind(kind: str) -> list[dict[str, Any]]:
    return [document for document in k8s_documents() if document["kind"] == kind]


def workloads() -> list[dict[str, Any]]:
    return [document for document in k8s_documents() if document["kind"] in {"Deployment", "StatefulSet"}]


def containers(workload: Mapping[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = workload["spec"]["template"]["spec"]["containers"]
    return found


def workload(name: str) -> dict[str, Any]:
    (found,) = [item for item in workloads() if item["metadata"]["name"] == name]
    return found


def is_greenq_image(image: str) -> bool:
    return image.rsplit("/", maxsplit=1)[-1].split(":", maxsplit=1)[0] == GREENQ_IMAGE


def test_kustomization_lists_existing_files_that_parse() -> None:
    kustomization = load_yaml(K8S_DIR / "kustomization.yaml")
    listed = set(kustomization["resources"])
    on_disk = {path.name for path in K8S_DIR.glob("*.yaml")} - {"kustomization.yaml", "secret.example.yaml"}

    assert all((K8S_DIR / resource).is_file() for resource in listed)
    assert listed == on_disk
    assert all(document.get("apiVersion") and document.get("kind") for document in k8s_documents())


def test_k8s_images_are_greenq_or_pinned_public_images() -> None:
    for item in workloads():
        for container in containers(item):
            image = container["image"]
            tag = image.rpartition(":")[2] if ":" in image else ""
            assert tag not in {"", "latest"}, image
            assert is_greenq_image(image) or re.fullmatch(r"[a-z0-9./-]+:\d[\w.-]*", image), image


def test_k8s_service_target_ports_match_container_ports() -> None:
    for service in k8s_kind("Service"):
        selector = service["spec"]["selector"]
        selected = [
            item
            for item in workloads()
            if selector.items() <= item["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert selected, f"Service {service['metadata']['name']} selects no workload"
        for item in selected:
            ports = {
                p
                for c in containers(item)
                for port in c["ports"]
                for p in (port["name"], port["containerPort"])
            }
            for port in service["spec"]["ports"]:
                assert port["targetPort"] in ports, (service["metadata"]["name"], port)


def test_k8s_greenq_containers_set_only_variables_the_app_reads() -> None:
    readers: dict[str, type[BaseSettings]] = {"ingress": IngressSettings, "worker": WorkerSettings}
    for item in workloads():
        for container in containers(item):
            if not is_greenq_image(container["image"]):
                continue
            role = container["command"][1]
            names = [variable["name"] for variable in container["env"]]
            values = " ".join(str(variable.get("value", "")) for variable in container["env"])
            helpers = {name for name in names if f"$({name})" in values}
            assert set(names) - helpers <= settings_env_names(readers[role]), (role, names)


def test_k8s_ingress_probes_hit_healthz_and_readyz() -> None:
    (container,) = containers(workload("greenq-ingress"))

    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    (worker,) = containers(workload("greenq-worker"))
    assert worker["livenessProbe"]["httpGet"]["path"] == "/metrics"


def test_k8s_pods_run_non_root_with_resource_limits() -> None:
    for item in workloads():
        pod = item["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, item["metadata"]["name"]
        for container in containers(item):
            assert container["securityContext"]["allowPrivilegeEscalation"] is False
            assert container["resources"]["requests"], item["metadata"]["name"]
            assert container["resources"]["limits"], item["metadata"]["name"]


def test_k8s_redis_uses_aof_a_secret_password_and_a_volume_claim() -> None:
    redis = workload("greenq-redis")
    (container,) = containers(redis)
    args = container["args"]

    assert args[args.index("--appendonly") + 1] == "yes"
    assert args[args.index("--appendfsync") + 1] == "always"
    assert args[args.index("--maxmemory-policy") + 1] == "noeviction"
    assert args[args.index("--maxmemory") + 1] == DEFAULT_MAXMEMORY
    assert args[args.index("--requirepass") + 1] == "$(REDIS_PASSWORD)"
    assert {
        "name": "REDIS_PASSWORD",
        "valueFrom": {"secretKeyRef": {"name": "greenq-secrets", "key": "REDIS_PASSWORD"}},
    } in container["env"]
    assert redis["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"


def test_keda_scales_the_worker_deployment_on_the_rq_queue_list() -> None:
    (scaled,) = k8s_kind("ScaledObject")
    (trigger,) = scaled["spec"]["triggers"]
    authentications = {item["metadata"]["name"]: item for item in k8s_kind("TriggerAuthentication")}
    secret = documented_k8s_secret()

    assert scaled["spec"]["scaleTargetRef"]["name"] == workload("greenq-worker")["metadata"]["name"]
    assert trigger["type"] == "redis"
    assert trigger["metadata"]["listName"] == f"rq:queue:{keys.QUEUE_NAME}"
    assert int(trigger["metadata"]["listLength"]) > 0
    (ref,) = authentications[trigger["authenticationRef"]["name"]]["spec"]["secretTargetRef"]
    assert ref["name"] == secret["metadata"]["name"]
    assert ref["key"] in secret["stringData"]


def documented_k8s_secret() -> dict[str, Any]:
    document: dict[str, Any] = load_yaml(K8S_DIR / "secret.example.yaml")
    return document


def test_k8s_kustomization_applies_no_secret_but_documents_every_key_the_pods_read() -> None:
    secret = documented_k8s_secret()
    referenced = {
        (ref["name"], ref["key"])
        for item in workloads()
        for container in containers(item)
        for variable in container.get("env", [])
        if (ref := variable.get("valueFrom", {}).get("secretKeyRef"))
    }

    assert k8s_kind("Secret") == [], "kubectl apply -k must never overwrite a real Secret with placeholders"
    assert referenced, "the pods read their secrets from greenq-secrets"
    assert referenced <= {(secret["metadata"]["name"], key) for key in secret["stringData"]}


# --- Dockerfile -----------------------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "") for line in lines]


def final_stage() -> list[tuple[str, str]]:
    instructions = dockerfile_instructions()
    last_from = max(index for index, (op, _) in enumerate(instructions) if op == "FROM")
    return instructions[last_from:]


def test_dockerfile_is_multi_stage_on_pinned_bases() -> None:
    instructions = dockerfile_instructions()
    arguments = dict(arg.split("=", 1) for op, arg in instructions if op == "ARG" and "=" in arg)
    bases = [
        re.sub(r"\$\{(\w+)\}", lambda m: arguments[m.group(1)], arg.split()[0])
        for op, arg in instructions
        if op == "FROM"
    ]

    assert len(bases) >= 2
    for base in bases:
        assert ":" in base, f"{base} has no tag"
        assert base.rpartition(":")[2] != "latest", base
    assert bases[-1].startswith("python:3.11")
    assert "slim" in bases[-1]


def test_dockerfile_final_stage_runs_non_root_with_a_healthcheck() -> None:
    stage = final_stage()
    users = [arg for op, arg in stage if op == "USER"]

    assert users, "the final stage sets no USER"
    assert users[-1].split(":")[0] not in {"root", "0"}
    assert any(op == "HEALTHCHECK" and "/healthz" in arg for op, arg in stage)
    assert ("CMD", '["greenq", "ingress"]') in stage
    assert not any(op == "RUN" and re.search(r"apt-get install|pip install|gcc", arg) for op, arg in stage)


def test_dockerignore_keeps_secrets_and_local_state_out_of_the_build_context() -> None:
    rules = [line.strip() for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()]

    assert {".env", ".env.*", ".git/", ".venv/"} <= set(rules)
    assert not any(rule.startswith("!") for rule in rules), "a re-include could bring a secret back"
