"""The real docker-compose.yml plus the stand-in override, run with ``docker compose`` on a private engine."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.compose.engine import DockerEngine

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
OVERRIDE_FILE = Path(__file__).parent / "docker-compose.standins.yml"
PROJECT = "greenq-compose-test"


@dataclass(frozen=True)
class Ports:
    """Loopback ports the stack publishes: nginx (the webhook), Redis and Prometheus (for the test only)."""

    http: int
    redis: int
    prometheus: int


class ComposeStack:
    """``docker compose -p PROJECT -f docker-compose.yml -f <override> --env-file <test's env>``."""

    def __init__(self, engine: DockerEngine, env_file: Path) -> None:
        self.engine = engine
        self.env_file = env_file

    def compose(self, *args: str, timeout: float = 300.0) -> str:
        """Run one compose command; raise with its output's tail when it fails."""
        command = ["docker", "compose", "-p", PROJECT, "--project-directory", str(ROOT)]
        command += ["-f", str(COMPOSE_FILE), "-f", str(OVERRIDE_FILE), "--env-file", str(self.env_file)]
        result = subprocess.run(
            [*command, *args],
            env=self.engine.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        output = result.stdout + result.stderr
        if result.returncode != 0:
            tail = "\n".join(output.splitlines()[-30:])
            raise AssertionError(f"docker compose {' '.join(args)} exited {result.returncode}:\n{tail}")
        return output

    def containers(self, service: str) -> list[str]:
        """IDs of the service's running containers."""
        return self.compose("ps", "-q", "--status", "running", service).split()

    def addresses(self, service: str) -> set[str]:
        """IP addresses of the service's running containers on the project network."""
        found = set()
        for container in self.containers(service):
            template = "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}"
            found.add(self.engine.docker("inspect", "--format", template, container).stdout.strip())
        return found

    def image_ids(self, service: str) -> set[str]:
        return {
            self.engine.docker("inspect", "--format", "{{.Image}}", container).stdout.strip()
            for container in self.containers(service)
        }

    def scale(self, **replicas: int) -> None:
        """``up -d --no-recreate --scale name=N ...`` without rebuilding or waiting for health."""
        args = [f"--scale={name}={count}" for name, count in replicas.items()]
        self.compose("up", "-d", "--no-build", "--no-recreate", *args)

    def down(self) -> None:
        self.compose("down", "--volumes", "--remove-orphans", "--timeout", "10")

    def logs(self, lines: int = 40) -> str:
        try:
            return self.compose("logs", "--no-color", "--tail", str(lines), timeout=60)
        except (AssertionError, subprocess.TimeoutExpired) as error:
            return f"(no logs: {error})"


def write_env_file(path: Path, ports: Ports, redis_password: str, hook_tokens: dict[int, str]) -> None:
    """The ``.env`` the README asks for, with test values; nginx is published on loopback only."""
    lines = {
        "REDIS_PASSWORD": redis_password,
        "GREENQ_TOKENS": ",".join(f"i{instance}={token}" for instance, token in hook_tokens.items()),
        "GRAFANA_ADMIN_PASSWORD": "grafana-is-not-started-by-this-test",
        "GREENQ_HTTP_PORT": f"127.0.0.1:{ports.http}",
        "GREENQ_TEST_REDIS_PORT": str(ports.redis),
        "GREENQ_TEST_PROMETHEUS_PORT": str(ports.prometheus),
    }
    path.write_text("".join(f"{name}={value}\n" for name, value in lines.items()))
