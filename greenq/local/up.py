"""``greenq up``: the whole pipeline on one machine, no Docker.

The compose topology as local processes: Redis (a private ``redis-server`` with production persistence,
or ``--redis-url``), nginx in front (when installed; config rendered from the compose template), N ingress
processes, M workers, with ``--sender`` the outbox sender. Runs until Ctrl-C or SIGTERM, then stops
everything front to back: nginx, ingress (in-flight requests finish, no new 200s), workers (each finishes
its current job), the sender (its calls in flight finish), Redis.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TextIO

from greenq.core.settings import DEFAULT_BODY_CAP_BYTES, UP_ENV_FILE
from greenq.local.nginx_server import LocalNginx, find_nginx
from greenq.local.procs import free_port, greenq_command, python_command, stop_process, wait_for_port
from greenq.local.redis_server import DEFAULT_MAXMEMORY, LocalRedis
from greenq.local.simulated import SimulatedInstance


@dataclass(frozen=True)
class UpOptions:
    """What to start."""

    ingress: int = 1
    workers: int = 2
    port: int = 8080
    data_dir: Path = Path(".greenq")
    redis_url: str | None = None
    webhook_path: str = "/green-api/webhook/"
    #: None: use nginx when it is installed; True: require it; False: ingress processes only.
    nginx: bool | None = None
    body_cap_bytes: int = DEFAULT_BODY_CAP_BYTES
    #: Each process's output goes to ``<log_dir>/<name>.log`` instead of this terminal.
    log_dir: Path | None = None
    #: fsync policy of the private Redis: ``always`` (a 200 survives a crash) or the ``everysec`` opt-in.
    appendfsync: str = "always"
    #: Memory limit of the private Redis (noeviction: when full, the ingress answers 503).
    maxmemory: str = DEFAULT_MAXMEMORY
    #: Also run ``greenq send`` (the outbox sender; it needs ``GREENQ_INSTANCES``).
    sender: bool = False
    #: ``GREENQ_*`` settings for the ingress and worker processes on top of this process's environment
    #: (their input, as it is for any program), e.g. the benchmark's ordering mode.
    child_settings: tuple[tuple[str, str], ...] = ()
    #: The workers' router (``module:attribute``, e.g. a bot in ``examples/``); None: the built-in one.
    router: str | None = None
    #: Also run a simulated GREEN API instance pushing to this pipeline, and the sender for its replies.
    simulator: bool = False


@dataclass
class Child:
    """A process we started, with what the summary says about it."""

    role: str
    #: Own session: a terminal's Ctrl-C reaches only ``greenq up``, which stops children in order.
    process: subprocess.Popen[bytes]
    url: str


@dataclass
class LocalPipeline:
    """Starts and stops the local topology."""

    options: UpOptions
    out: TextIO = sys.stdout
    children: list[Child] = field(default_factory=list)
    redis: LocalRedis | None = None
    nginx: LocalNginx | None = None
    token_file: Path | None = None
    #: GREENQ_REDIS_URL for the operator commands (``greenq status``/``dlq``), removed again on stop.
    env_file: Path | None = None
    simulated: SimulatedInstance | None = None
    _env: dict[str, str] = field(default_factory=dict, repr=False)

    def start(self) -> None:
        data_dir = self.options.data_dir.resolve()
        data_dir.mkdir(parents=True, exist_ok=True)
        redis_url = self.options.redis_url or self._start_redis(data_dir)
        env = self._environment(data_dir, redis_url)
        self._env = env
        self._write_env_file(data_dir, redis_url)
        use_nginx = self.options.nginx if self.options.nginx is not None else find_nginx() is not None
        ports = [free_port() for _ in range(self.options.ingress)] if use_nginx else None
        if use_nginx:
            env["GREENQ_TRUSTED_PROXIES"] = "127.0.0.1"  # believe X-Forwarded-For from our own nginx only
        for index in range(self.options.ingress):
            port = ports[index] if ports else self.options.port + index
            self._start_ingress(index, port, env, data_dir)
        if ports:
            self._start_nginx(data_dir, ports)
        for index in range(self.options.workers):
            self._start_worker(index, env)
        if self.options.simulator:
            self._start_simulated(env)
        elif self.options.sender:
            self._start_sender(env)

    @property
    def webhook_url(self) -> str:
        """Where GREEN API (or curl) should POST: nginx when it runs, else the first ingress."""
        base = self.nginx.url if self.nginx else next(c.url for c in self.children if c.role == "ingress")
        return base + self.options.webhook_path

    def stop(self) -> None:
        """Front to back: the simulator (no new notifications), nginx (no new requests), ingress (in-flight
        ones finish), workers, the sender (its calls in flight finish), Redis."""
        for child in self.children:
            if child.role == "simulator":
                stop_process(child.process, timeout=30)
        if self.nginx is not None:
            self.nginx.stop()
        for role in ("ingress", "worker", "sender"):
            for child in self.children:
                if child.role == role:
                    stop_process(child.process, timeout=30)
        if self.redis is not None:
            self.redis.stop()
        if self.env_file is not None:
            self.env_file.unlink(missing_ok=True)

    def _write_env_file(self, data_dir: Path, redis_url: str) -> None:
        """Where this pipeline's Redis is, readable by the owner only (the URL carries its password)."""
        self.env_file = data_dir / Path(UP_ENV_FILE).name
        self.env_file.touch(mode=0o600)
        self.env_file.write_text(f"GREENQ_REDIS_URL={redis_url}\n")

    def operator_hint(self) -> str:
        """How a second terminal reaches this pipeline: nothing to type when run from the same folder."""
        if self.env_file is None:
            return ""
        greenq = greenq_command()
        if self.env_file.resolve() == Path(UP_ENV_FILE).resolve():
            return f"  status:  {greenq} status  ({greenq} dlq list too; run here, they read {UP_ENV_FILE})"
        return f"  status:  set -a; . {self.env_file}; set +a; {greenq} status"

    def summary(self) -> str:
        lines = ["greenq is running:", f"  webhook  {self.webhook_url}"]
        nginx = self.nginx
        if nginx is not None and nginx.process is not None:
            lines.append(f"  nginx    pid {nginx.process.pid:<7} {nginx.url} (logs in {nginx.run_dir})")
        for child in self.children:
            lines.append(f"  {child.role:<8} pid {child.process.pid:<7} {child.url}")
        if self.token_file is not None:
            lines.append(f"  token    in {self.token_file} (name 'local')")
            lines.append(
                f'  try:     curl -H "Authorization: Bearer $(cat {self.token_file})" '
                f"--data-binary @tests/samples/incomingMessageReceived__textMessage.json {self.webhook_url}"
            )
        if self.simulated is not None:
            lines.append(f"  chat:    {self.simulated.chat_command(python_command())}")
        if hint := self.operator_hint():
            lines.append(hint)
        lines.append("  Ctrl-C stops everything.")
        return "\n".join(lines)

    def wait(self, stop_event: threading.Event) -> int:
        """Block until asked to stop (0) or a child dies on its own (1)."""
        while not stop_event.wait(0.5):
            for child in self.children:
                if child.process.poll() is not None:
                    self.out.write(
                        f"{child.role} pid {child.process.pid} exited with {child.process.returncode}\n"
                    )
                    return 1
        return 0

    def _start_redis(self, data_dir: Path) -> str:
        options = self.options
        self.redis = LocalRedis(
            data_dir / "redis", appendfsync=options.appendfsync, maxmemory=options.maxmemory
        ).start()
        self.out.write(
            f"redis-server on 127.0.0.1:{self.redis.port} (AOF, appendfsync {options.appendfsync}, "
            f"maxmemory {options.maxmemory} noeviction)\n"
        )
        return self.redis.url

    def _environment(self, data_dir: Path, redis_url: str) -> dict[str, str]:
        env = dict(os.environ, **dict(self.options.child_settings))
        env.update(GREENQ_REDIS_URL=redis_url, GREENQ_WEBHOOK_PATH=self.options.webhook_path)
        if self.options.router is not None:
            env["GREENQ_ROUTER"] = self.options.router
            # A router in this folder (e.g. examples.order_bot) is importable by the workers.
            env["PYTHONPATH"] = os.pathsep.join(filter(None, (str(Path.cwd()), env.get("PYTHONPATH"))))
        if not env.get("GREENQ_TOKENS") and env.get("GREENQ_ALLOW_UNAUTHENTICATED", "").lower() != "true":
            self.token_file = data_dir / "token"
            if not self.token_file.exists():
                self.token_file.touch(mode=0o600)
                self.token_file.write_text(secrets.token_urlsafe(32))
            env["GREENQ_TOKENS"] = f"local={self.token_file.read_text().strip()}"
        return env

    def _start_nginx(self, data_dir: Path, ports: list[int]) -> None:
        upstreams = [f"127.0.0.1:{port}" for port in ports]
        options = self.options
        nginx = LocalNginx(
            data_dir / "nginx", options.port, upstreams, options.body_cap_bytes, options.webhook_path
        )
        self.nginx = nginx.start()

    def restart_ingress(self, index: int) -> None:
        """Rolling restart of one ingress process (SIGTERM, then a new process on the same port)."""
        ingresses = [child for child in self.children if child.role == "ingress"]
        old = ingresses[index]
        stop_process(old.process, timeout=30)
        self.children.remove(old)
        port = int(old.url.rsplit(":", 1)[1])
        self._start_ingress(index, port, self._env, self.options.data_dir.resolve())

    def _start_ingress(self, index: int, port: int, env: dict[str, str], data_dir: Path) -> None:
        metrics_dir = data_dir / f"ingress-{index}-metrics"
        command = ["ingress", "--port", str(port), "--metrics-dir", str(metrics_dir)]
        self._spawn("ingress", f"ingress-{index}", command, env, port=port, url=f"http://127.0.0.1:{port}")

    def _start_worker(self, index: int, env: dict[str, str]) -> None:
        port = free_port()
        command = ["worker", "--metrics-port", str(port), "--name", f"local-{index}"]
        self._spawn(
            "worker", f"worker-{index}", command, env, port=port, url=f"http://127.0.0.1:{port}/metrics"
        )

    def _start_simulated(self, env: dict[str, str]) -> None:
        """The simulator (its webhook pointed at this pipeline, with its token) and the sender for it."""
        if self.token_file is None:
            raise RuntimeError("--simulator pushes with greenq up's own token: unset GREENQ_TOKENS")
        simulated = SimulatedInstance.fresh()
        self.simulated = simulated
        self._spawn(
            "simulator", "simulator", simulated.simulator_args(), env, port=simulated.port, url=simulated.url
        )
        simulated.point_webhook_at(self.webhook_url, self.token_file.read_text().strip())
        self._start_sender(dict(env, GREENQ_INSTANCES=simulated.sender_instances()))

    def _start_sender(self, env: dict[str, str]) -> None:
        port = free_port()
        command = ["send", "--metrics-port", str(port)]
        self._spawn("sender", "sender", command, env, port=port, url=f"http://127.0.0.1:{port}/metrics")

    def _spawn(
        self, role: str, name: str, args: list[str], env: dict[str, str], *, port: int, url: str
    ) -> None:
        """Start ``greenq <args>`` in its own session; wait until it listens on ``port``."""
        log_dir = self.options.log_dir
        output = None
        if log_dir is not None:
            log_dir.mkdir(parents=True, exist_ok=True)
            output = (log_dir / f"{name}.log").open("ab")
        process = subprocess.Popen(
            [sys.executable, "-m", "greenq", *args],
            env=env,
            start_new_session=True,
            stdout=output,
            stderr=output,
        )
        if output is not None:
            output.close()  # the child holds its own descriptor
        self.children.append(Child(role, process, url))
        wait_for_port("127.0.0.1", port, 30, process)


def run_up(options: UpOptions, out: TextIO = sys.stdout) -> int:
    """Start, print where everything is, wait for Ctrl-C/SIGTERM, stop. Returns the exit code."""
    stop_event = threading.Event()

    def request_stop(_signum: int, _frame: FrameType | None) -> None:
        stop_event.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    pipeline = LocalPipeline(options, out)
    try:
        pipeline.start()
        out.write(pipeline.summary() + "\n")
        out.flush()
        return pipeline.wait(stop_event)
    finally:
        out.write("stopping...\n")
        pipeline.stop()
        out.write("stopped\n")
