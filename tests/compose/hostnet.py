"""What a Docker engine changes on the host's network, recorded before it starts and undone after it stops.

dockerd adds bridges (docker0, br-*), iptables chains and rules, sets the FORWARD policy to DROP and turns
on IP forwarding, and leaves all of that behind when it exits. The compose test must leave the machine as
it found it, so it takes a snapshot first and removes only what appeared since and belongs to Docker.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

TABLES = ("filter", "nat")
IP_FORWARD = Path("/proc/sys/net/ipv4/ip_forward")
# Names dockerd gives its chains and links; a rule is Docker's when it jumps to, or matches, one of them.
DOCKER_NAME = re.compile(r"\bDOCKER[\w-]*|\bdocker0\b|\bbr-[0-9a-f]{12}\b|\bveth\w+")


def _run(*args: str) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True, timeout=30).stdout


def links() -> set[str]:
    """Names of the host's network links."""
    return {line.split()[0].split("@")[0] for line in _run("ip", "-br", "link").splitlines() if line.strip()}


def iptables_lines(table: str) -> list[str]:
    """``iptables -S`` of one table: ``-P``/``-N`` lines and ``-A`` rules."""
    return [line for line in _run("iptables", "-t", table, "-S").splitlines() if line.strip()]


@dataclass(frozen=True)
class HostNetwork:
    """The parts of the host's network state a Docker engine touches."""

    links: frozenset[str]
    iptables: dict[str, frozenset[str]]
    forward_policy: str
    ip_forward: str

    @classmethod
    def snapshot(cls) -> HostNetwork:
        filter_lines = iptables_lines("filter")
        policy = next(line.split()[2] for line in filter_lines if line.startswith("-P FORWARD "))
        return cls(
            links=frozenset(links()),
            iptables={table: frozenset(iptables_lines(table)) for table in TABLES},
            forward_policy=policy,
            ip_forward=IP_FORWARD.read_text().strip(),
        )

    def save(self, path: Path) -> None:
        data = {**self.__dict__, "links": sorted(self.links)}
        data["iptables"] = {table: sorted(lines) for table, lines in self.iptables.items()}
        path.write_text(json.dumps(data))

    @classmethod
    def load(cls, path: Path) -> HostNetwork:
        data = json.loads(path.read_text())
        return cls(
            links=frozenset(data["links"]),
            iptables={table: frozenset(lines) for table, lines in data["iptables"].items()},
            forward_policy=data["forward_policy"],
            ip_forward=data["ip_forward"],
        )

    def restore(self) -> list[str]:
        """Undo Docker's additions since the snapshot; what was done, one line each (for the test's log)."""
        done = [f"deleted link {name}" for name in self._delete_new_links()]
        for table in TABLES:
            done += self._delete_new_rules(table)
        _run("iptables", "-P", "FORWARD", self.forward_policy)
        IP_FORWARD.write_text(self.ip_forward + "\n")
        return done

    def differences(self) -> list[str]:
        """What still differs from the snapshot in Docker's names (empty when the host is as found)."""
        now = HostNetwork.snapshot()
        found = [f"link {name}" for name in now.links - self.links if DOCKER_NAME.search(name)]
        for table in TABLES:
            found += [f"{table}: {line}" for line in now.iptables[table] - self.iptables[table]]
        if now.forward_policy != self.forward_policy:
            found.append(f"FORWARD policy {now.forward_policy} (was {self.forward_policy})")
        if now.ip_forward != self.ip_forward:
            found.append(f"ip_forward {now.ip_forward} (was {self.ip_forward})")
        return found

    def _delete_new_links(self) -> list[str]:
        new = sorted(name for name in links() - self.links if DOCKER_NAME.search(name))
        for name in new:
            subprocess.run(["ip", "link", "delete", name], check=False, capture_output=True, timeout=30)
        return new

    def _delete_new_rules(self, table: str) -> list[str]:
        """Docker's new rules first (``-A`` becomes ``-D``), then its new chains, emptied and deleted."""
        before = self.iptables[table]
        added = [line for line in iptables_lines(table) if line not in before and DOCKER_NAME.search(line)]
        done = []
        for line in (line for line in added if line.startswith("-A ")):
            subprocess.run(
                ["iptables", "-t", table, "-D", *shlex.split(line)[1:]], check=False, capture_output=True
            )
            done.append(f"{table}: removed {line}")
        for line in (line for line in added if line.startswith("-N ")):
            chain = line.split()[1]
            subprocess.run(["iptables", "-t", table, "-F", chain], check=False, capture_output=True)
            subprocess.run(["iptables", "-t", table, "-X", chain], check=False, capture_output=True)
            done.append(f"{table}: removed chain {chain}")
        return done
