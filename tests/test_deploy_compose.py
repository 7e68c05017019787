"""docker-compose.yml and .env.example: the compose-spec JSON schema plus our rules (health checks,
durable Redis, replicas, secrets only as required variables, pinned images, settings the app reads)."""

from __future__ import annotations

import json
import re

import pytest
from jsonschema import Draft201909Validator
from pydantic_settings import BaseSettings

from greenq.core.settings import (
    DEFAULT_BODY_CAP_BYTES,
    DEFAULT_MAX_BODY_BYTES,
    IngressSettings,
    WorkerSettings,
)
from greenq.local.redis_server import DEFAULT_MAXMEMORY
from tests.support.compose_model import (
    command_args,
    compose_services,
    compose_variables,
    env_example,
    interpolated_compose,
    raw_compose,
)
from tests.support.deploy_files import (
    COMMITTED_NGINX_CONF,
    COMPOSE_FILE,
    COMPOSE_SCHEMA,
    ROOT,
    settings_env_names,
)
from tests.support.nginx_conf import parse

SECRET_VARIABLES = ("REDIS_PASSWORD", "GREENQ_TOKENS", "GRAFANA_ADMIN_PASSWORD")
SCALABLE_SERVICES = ("ingress", "worker")


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
    http = parse(COMMITTED_NGINX_CONF.read_text(encoding="utf-8")).one("http")
    webhook = http.one("server").one("location", "^~", environment["GREENQ_WEBHOOK_PATH"])

    assert int(environment["GREENQ_MAX_BODY_BYTES"]) == DEFAULT_MAX_BODY_BYTES
    assert int(environment["GREENQ_BODY_CAP_BYTES"]) == DEFAULT_BODY_CAP_BYTES
    assert http.value("client_max_body_size") == (environment["GREENQ_BODY_CAP_BYTES"],)
    assert webhook.value("proxy_pass") == ("http://greenq_ingress",)
    upstream_server = http.one("upstream", "greenq_ingress").value("server")
    assert upstream_server[:2] == (f"ingress:{environment['GREENQ_PORT']}", "resolve")


def test_compose_mounts_files_that_exist() -> None:
    for name, service in compose_services(raw_compose()).items():
        for volume in service.get("volumes", []):
            source = str(volume).split(":")[0]
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"


def test_every_greenq_service_reads_one_ordering_setting_defaulting_to_partitioned() -> None:
    """Order holds only once every process writes partitions: one `.env` variable sets the mode for all of
    them (ingress, worker, reconcile), with the setting's default."""
    services = compose_services(raw_compose())
    greenq = {name: service for name, service in services.items() if command_args(service)[:1] == ["greenq"]}
    assert {"ingress", "worker", "reconcile"} <= set(greenq)
    default = WorkerSettings.model_fields["ordering"].default
    assert default == "partitioned"
    for name, service in greenq.items():
        assert service["environment"]["GREENQ_ORDERING"] == f"${{GREENQ_ORDERING:-{default}}}", name
