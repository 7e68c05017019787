"""Monitoring deploy files: the Prometheus config and alert rules pass ``promtool`` (its rule unit tests
too), alerts and dashboard query only series the code exports, Grafana is wired to both."""

from __future__ import annotations

import json

from tests.support.compose_model import compose_services, interpolated_compose, raw_compose
from tests.support.deploy_files import (
    DASHBOARD,
    DEPLOY,
    PROMETHEUS_DIR,
    alert_rules,
    dashboard_exprs,
    exported_series,
    greenq_metric_tokens,
    load_yaml,
    require_binary,
    run_tool,
)


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
        "GreenqChatHeldLong",
    } <= proven


def test_every_alert_has_a_severity_summary_and_description() -> None:
    for rule in alert_rules():
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
        assert rule["annotations"]["summary"].strip(), rule["alert"]
        assert rule["annotations"]["description"].strip(), rule["alert"]


def test_alerts_cover_the_operational_failure_modes() -> None:
    exprs = {rule["alert"]: rule["expr"] for rule in alert_rules()}
    joined = "\n".join(exprs.values())

    for fragment in (
        'greenq_notifications_total{outcome="unknown_type"}',
        'greenq_notifications_total{outcome="invalid"}',
        'greenq_notifications_total{outcome="too_large"}',
        'greenq_ingress_requests_total{outcome="over_cap"}',
        "greenq_dead_letters",
        "greenq_queue_depth",
        "greenq_queue_oldest_age_seconds",
        'absent(up{job="worker"} == 1)',
        "greenq_workers_alive",
        'greenq_ingress_requests_total{outcome="unavailable"}',
        "greenq_redis_up == 0",
        "greenq_redis_memory_used_bytes",
        "greenq_failed_jobs",
        "greenq_held_chats",
    ):
        assert fragment in joined, fragment


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
