"""docker-compose.yml as ``docker compose config`` sees it: variables interpolated the way Compose does,
with the values .env.example documents."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tests.support.deploy_files import COMPOSE_FILE, ENV_EXAMPLE, Json, load_yaml

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
