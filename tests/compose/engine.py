"""A private Docker engine for the compose test: its own socket, data root and exec root, stopped by its PID.

The data root may live in a cache directory that outlives the test (stand-in images and build layers are
reused by the next run); everything else (socket, exec root, logs) is in a directory the test creates and
removes. The host's network is restored afterwards (see hostnet.py).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from tests.compose.hostnet import HostNetwork

START_SECONDS = 60.0
STOP_SECONDS = 60.0


class EngineUnavailable(RuntimeError):
    """dockerd could not be started here; the message says why."""


def pid_alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie, exited but not yet reaped, does not count)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def processes_mentioning(text: str) -> list[int]:
    """PIDs whose command line contains ``text`` (containerd shims and proxies of our engine)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if text in (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def terminate(pid: int, timeout: float) -> None:
    """SIGTERM, then SIGKILL after ``timeout``; for processes this test (or its previous run) started."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if pid_alive(pid):
        os.kill(pid, signal.SIGKILL)


def unmount_under(*roots: Path) -> None:
    """Lazily unmount what is still mounted below ``roots`` (overlay layers, netns files), deepest first."""
    prefixes = tuple(f"{root}/" for root in roots)
    mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    for mount in sorted((m for m in mounts if m.startswith(prefixes)), key=len, reverse=True):
        subprocess.run(["umount", "-l", mount], check=False, capture_output=True)


class DockerEngine:
    """dockerd on ``run_dir/docker.sock``, its data in ``data_root``; ``docker`` reaches it via ``env``."""

    def __init__(self, data_root: Path, run_dir: Path, docker_config: Path) -> None:
        self.data_root = data_root
        self.run_dir = run_dir
        self.socket = run_dir / "docker.sock"
        self.log = run_dir / "dockerd.log"
        self.env = {**os.environ, "DOCKER_HOST": f"unix://{self.socket}", "DOCKER_CONFIG": str(docker_config)}
        # Left by a run that died without stopping its engine: that dockerd is ours to stop.
        self._pid_record = data_root.parent / "dockerd.pid"
        self._network_record = data_root.parent / "host-network.json"
        self._process: subprocess.Popen[bytes] | None = None
        self._network: HostNetwork | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def start(self) -> DockerEngine:
        self._stop_leftover()
        self._network = HostNetwork.snapshot()
        self._network.save(self._network_record)
        self.data_root.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as log:
            self._process = subprocess.Popen(
                [
                    "dockerd",
                    f"--data-root={self.data_root}",
                    f"--exec-root={self.run_dir / 'exec'}",
                    f"--pidfile={self.run_dir / 'dockerd.pid'}",
                    f"--host=unix://{self.socket}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._pid_record.write_text(f"{self._process.pid} {self.data_root} {self.run_dir}\n")
        self._wait_ready()
        return self

    def docker(self, *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["docker", *args], env=self.env, capture_output=True, text=True, timeout=timeout, check=False
        )

    def stop(self) -> list[str]:
        """Stop dockerd by PID, end what it left, restore the host network; the cleanup steps taken."""
        done: list[str] = []
        if self._process is not None:
            terminate(self._process.pid, STOP_SECONDS)
            self._process.wait(10)
            done.append(f"stopped dockerd pid {self._process.pid}, exit {self._process.returncode}")
        for pid in processes_mentioning(str(self.run_dir)):
            terminate(pid, 10)
            done.append(f"stopped leftover pid {pid}")
        unmount_under(self.run_dir, self.data_root)
        if self._network is not None:
            done += self._network.restore()
        self._pid_record.unlink(missing_ok=True)
        self._network_record.unlink(missing_ok=True)
        return done

    def host_differences(self) -> list[str]:
        return self._network.differences() if self._network else []

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_SECONDS
        assert self._process is not None
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise EngineUnavailable(f"dockerd exited with {self._process.returncode}: {self.log_tail()}")
            if self.socket.exists() and self.docker("version", timeout=10).returncode == 0:
                return
            time.sleep(0.2)
        raise EngineUnavailable(f"dockerd not ready after {START_SECONDS:g}s: {self.log_tail()}")

    def log_tail(self, lines: int = 15) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def _stop_leftover(self) -> None:
        """Stop the engine of a run that died without stopping it, and undo what it left (all ours)."""
        if not self._pid_record.exists():
            return
        pid_text, root, run_dir = self._pid_record.read_text().split()
        pid = int(pid_text)
        cmdline = Path(f"/proc/{pid}/cmdline")
        if root == str(self.data_root) and cmdline.exists() and b"dockerd" in cmdline.read_bytes():
            terminate(pid, STOP_SECONDS)
        for leftover in processes_mentioning(run_dir):
            terminate(leftover, 10)
        unmount_under(Path(run_dir), self.data_root)
        shutil.rmtree(run_dir, ignore_errors=True)
        if self._network_record.exists():
            HostNetwork.load(self._network_record).restore()
            self._network_record.unlink()
        self._pid_record.unlink()
