"""Static checks of what the compose test relies on (run in the main suite; the real run is marked compose).

The image builds once and from constraints.txt, without a Docker Hub frontend; the test's override replaces
upstream images and publishes on loopback, and changes nothing else about the stack.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from tests.compose.stack import COMPOSE_FILE, OVERRIDE_FILE, ROOT
from tests.compose.standins import STANDINS

DOCKERFILE = ROOT / "Dockerfile"
UPSTREAM_SERVICES = {"redis", "nginx", "prometheus"}


def services(path: Any) -> dict[str, dict[str, Any]]:
    loaded: dict[str, dict[str, Any]] = yaml.safe_load(path.read_text(encoding="utf-8"))["services"]
    return loaded


def test_dockerfile_needs_no_frontend_from_docker_hub() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")

    assert not re.search(r"^#\s*syntax\s*=", text, flags=re.MULTILINE | re.IGNORECASE)


def test_every_pip_install_in_the_image_uses_the_constraints() -> None:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    installs = re.findall(r"pip install [^&\n]*", text)

    assert installs
    assert all("-c constraints.txt" in command for command in installs), installs
    assert re.search(r"^COPY [^\n]*constraints\.txt", text, flags=re.MULTILINE)


def test_compose_builds_the_greenq_image_once_for_both_roles() -> None:
    compose = services(COMPOSE_FILE)
    ingress, worker = compose["ingress"], compose["worker"]

    assert ingress["image"] == worker["image"]
    assert "build" in ingress
    assert "build" not in worker
    assert worker["pull_policy"] == "never"


def test_override_replaces_only_upstream_images_and_publishes_on_loopback() -> None:
    override = services(OVERRIDE_FILE)
    standin_tags = {standin.tag for standin in STANDINS}

    for name in UPSTREAM_SERVICES:
        assert override[name]["image"] in standin_tags, name
        assert override[name]["pull_policy"] == "never", name
        assert set(override[name]) <= {"image", "pull_policy", "ports"}, name
    assert override["ingress"] == {"build": {"args": {"PYTHON_IMAGE": "greenq-standin/python:3.11-bookworm"}}}
    assert override["grafana"] == {"profiles": ["grafana"]}, "grafana is only left out, nothing else"
    assert set(override) == UPSTREAM_SERVICES | {"ingress", "grafana"}
    ports = [port for service in override.values() for port in service.get("ports", [])]
    assert ports
    assert all(port.startswith("127.0.0.1:") for port in ports), ports
