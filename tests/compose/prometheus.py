"""Questions the compose test asks the stack's Prometheus over its HTTP API."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx2

from tests.support.deploy_files import DASHBOARD, alert_rules, dashboard_exprs

# Grafana fills in $__rate_interval (at least 4 scrape intervals: 1m with the 15 s scrape interval).
RATE_INTERVAL = "1m"
THROUGHPUT_METRICS = ("greenq_notifications_total", "greenq_ingress_requests_total")


@dataclass(frozen=True)
class Expression:
    """A PromQL expression the deploy files carry, with where it comes from."""

    origin: str
    promql: str


def dashboard_expressions() -> list[Expression]:
    return [
        Expression(f"{DASHBOARD.name}: {expr}", expr.replace("$__rate_interval", RATE_INTERVAL))
        for expr in dashboard_exprs()
    ]


def alert_expressions() -> list[Expression]:
    return [Expression(f"alert {rule['alert']}", rule["expr"]) for rule in alert_rules()]


def throughput_expressions() -> list[Expression]:
    """Dashboard panels that plot a rate of notifications or requests."""
    return [e for e in dashboard_expressions() if any(f"rate({m}" in e.promql for m in THROUGHPUT_METRICS)]


class Prometheus:
    def __init__(self, base_url: str) -> None:
        self._http = httpx2.Client(base_url=base_url, timeout=10.0, trust_env=False)

    def close(self) -> None:
        self._http.close()

    def _get(self, path: str, **params: str) -> Any:
        response = self._http.get(path, params=params)
        body = response.json()
        if body.get("status") != "success":
            raise AssertionError(f"{path} {params}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, promql: str) -> list[dict[str, Any]]:
        """An instant query's result vector; an evaluation error raises."""
        data = self._get("/api/v1/query", query=promql)
        return list(data["result"]) if data["resultType"] == "vector" else [data]

    def query_range(self, promql: str, start: float, end: float) -> list[dict[str, Any]]:
        data = self._get("/api/v1/query_range", query=promql, start=str(start), end=str(end), step="5")
        return list(data["result"])

    def up(self, job: str) -> dict[str, float]:
        """``up`` of every target of ``job``, by instance address (without the port)."""
        return {
            sample["metric"]["instance"].rsplit(":", 1)[0]: float(sample["value"][1])
            for sample in self.query(f'up{{job="{job}"}}')
        }

    def rule_health(self) -> dict[str, tuple[str, str]]:
        """(health, lastError) of every alerting rule Prometheus evaluates, by alert name."""
        groups = self._get("/api/v1/rules", type="alert")["groups"]
        return {
            rule["name"]: (rule["health"], rule.get("lastError", ""))
            for group in groups
            for rule in group["rules"]
        }

    def alert_state(self, name: str) -> str:
        """``pending``, ``firing`` or ``inactive``."""
        states = [
            alert["state"]
            for alert in self._get("/api/v1/alerts")["alerts"]
            if alert["labels"]["alertname"] == name
        ]
        return "firing" if "firing" in states else "pending" if "pending" in states else "inactive"
