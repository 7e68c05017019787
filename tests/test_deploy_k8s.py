"""The Kubernetes manifests (deploy/k8s): kustomization, images, ports, env, probes, Redis, KEDA, secrets."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import yaml
from pydantic_settings import BaseSettings

from greenq.core import keys
from greenq.core.settings import IngressSettings, SenderSettings, WorkerSettings
from greenq.local.redis_server import DEFAULT_MAXMEMORY
from tests.support.deploy_files import K8S_DIR, load_yaml, settings_env_names

GREENQ_IMAGE = "greenq"


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
    readers: dict[str, type[BaseSettings]] = {
        "ingress": IngressSettings,
        "worker": WorkerSettings,
        "send": SenderSettings,
    }
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


def test_keda_scales_the_worker_deployment_on_every_partition_stream_and_the_rq_queue_list() -> None:
    """Ordered mode (the default) leaves at most a drain job per partition in RQ's list: the waiting
    notifications are the partition streams' entries, one trigger per stream; the list still carries batch
    jobs of a process in jobs mode (the opt-out, or during a rolling switch)."""
    (scaled,) = k8s_kind("ScaledObject")
    triggers = scaled["spec"]["triggers"]
    authentications = {item["metadata"]["name"]: item for item in k8s_kind("TriggerAuthentication")}
    secret = documented_k8s_secret()

    assert scaled["spec"]["scaleTargetRef"]["name"] == workload("greenq-worker")["metadata"]["name"]
    (queue,) = [trigger for trigger in triggers if trigger["type"] == "redis"]
    assert queue["metadata"]["listName"] == f"rq:queue:{keys.QUEUE_NAME}"
    assert int(queue["metadata"]["listLength"]) > 0
    streams = [trigger for trigger in triggers if trigger["type"] == "redis-streams"]
    partitions = WorkerSettings.model_fields["partitions"].default
    assert [trigger["metadata"]["stream"] for trigger in streams] == [
        keys.partition_stream_key(partition) for partition in range(partitions)
    ]
    assert all(int(trigger["metadata"]["streamLength"]) > 0 for trigger in streams)
    assert len(triggers) == len(streams) + 1
    for trigger in triggers:
        assert trigger["metadata"]["address"] == queue["metadata"]["address"]
        (ref,) = authentications[trigger["authenticationRef"]["name"]]["spec"]["secretTargetRef"]
        assert ref["name"] == secret["metadata"]["name"]
        assert ref["key"] in secret["stringData"]


def test_every_greenq_deployment_runs_the_same_ordering_mode() -> None:
    """Order holds only once every process writes partitions: the manifests set the mode alike, to the
    default."""
    modes = {
        item["metadata"]["name"]: {v["name"]: v.get("value") for v in container["env"]}.get("GREENQ_ORDERING")
        for item in workloads()
        for container in containers(item)
        if is_greenq_image(container["image"])
    }
    assert set(modes.values()) == {WorkerSettings.model_fields["ordering"].default}, modes


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
