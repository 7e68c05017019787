"""Where the deploy files are, the tools that check them, and what they must agree with: the metric series
the code exports and the variables its settings read."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import fakeredis
import pytest
import yaml
from prometheus_client import CollectorRegistry
from pydantic_settings import BaseSettings

from greenq.ingress.metrics import IngressMetrics
from greenq.pull.reconcile_metrics import ReconcileMetrics
from greenq.sender.metrics import SenderMetrics
from greenq.workers.metrics import RedisStateCollector, WorkerMetrics

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
COMPOSE_SCHEMA = ROOT / "tests" / "fixtures" / "compose-spec.json"
COMMITTED_NGINX_CONF = DEPLOY / "nginx" / "nginx.conf"
PROMETHEUS_DIR = DEPLOY / "prometheus"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "greenq.json"
K8S_DIR = DEPLOY / "k8s"
DOCKERFILE = ROOT / "Dockerfile"

Json = Any


def require_binary(name: str, package: str) -> str:
    """Path of a required tool; a missing one fails the test (CI installs it)."""
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin:/sbin:/bin")
    if path is None:
        pytest.fail(f"`{name}` not found: install it (apt-get install {package}); CI installs it")
    return path


def run_tool(args: Sequence[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=60, check=False)


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
    sender = SenderMetrics.create(registry, ["first"])
    sender.count("first", "sendMessage", "sent")
    sender.latency.labels(instance="first", method="sendMessage")
    sender.length.labels(partition="0")
    families = [*registry.collect(), *RedisStateCollector(FakeRedisWithInfo()).collect()]
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}
    return frozenset(family.name + suffix for family in families for suffix in suffixes[family.type])


def greenq_metric_tokens(expr: str) -> set[str]:
    return set(re.findall(r"\bgreenq_[a-z_]+\b", expr))


def settings_env_names(settings: type[BaseSettings]) -> frozenset[str]:
    """Environment variables a settings class reads (``GREENQ_`` + field name)."""
    prefix = str(settings.model_config.get("env_prefix", ""))
    return frozenset(f"{prefix}{name}".upper() for name in settings.model_fields)


def alert_rules() -> list[dict[str, Any]]:
    """Every rule of deploy/prometheus/alerts.yml."""
    groups = load_yaml(PROMETHEUS_DIR / "alerts.yml")["groups"]
    return [rule for group in groups for rule in group["rules"]]


def dashboard_exprs() -> list[str]:
    """The PromQL of every panel target of the Grafana dashboard."""
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
