"""The compose test's host clean-up, proven without Docker: in a fresh network namespace, add what dockerd
adds (a bridge, chains, rules, the FORWARD policy, IP forwarding), restore, and find the namespace as it was,
with what was not Docker's left alone.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from tests.compose.conftest import unavailable
from tests.compose.stack import ROOT

SCENARIO = """
import subprocess
from pathlib import Path
from tests.compose.hostnet import HostNetwork, links

def sh(*args):
    subprocess.run(args, check=True)

sh("iptables", "-N", "NOT-DOCKERS")
sh("iptables", "-A", "FORWARD", "-j", "NOT-DOCKERS")
before = HostNetwork.snapshot()
sh("ip", "link", "add", "br-0123456789ab", "type", "bridge")
sh("ip", "link", "add", "docker0", "type", "bridge")
sh("ip", "link", "add", "mine0", "type", "bridge")
sh("iptables", "-N", "DOCKER")
sh("iptables", "-N", "DOCKER-USER")
sh("iptables", "-A", "FORWARD", "-j", "DOCKER-USER")
sh("iptables", "-A", "FORWARD", "-o", "br-0123456789ab", "-j", "DOCKER")
sh("iptables", "-A", "DOCKER-USER", "-j", "RETURN")
sh("iptables", "-t", "nat", "-N", "DOCKER")
sh("iptables", "-t", "nat", "-A", "POSTROUTING", "!", "-o", "docker0", "-j", "MASQUERADE")
sh("iptables", "-P", "FORWARD", "DROP")
Path("/proc/sys/net/ipv4/ip_forward").write_text("1")
assert len(before.differences()) >= 8, before.differences()

before.restore()

assert before.differences() == [], before.differences()
assert HostNetwork.snapshot().iptables == before.iptables
assert {"mine0"} <= links() and not {"docker0", "br-0123456789ab"} & links()
print("restored")
"""


def test_restore_removes_what_docker_added_and_nothing_else() -> None:
    if os.geteuid() != 0 or shutil.which("iptables") is None or shutil.which("unshare") is None:
        unavailable("needs root, iptables and unshare (apt-get install iptables)")
    result = subprocess.run(
        ["unshare", "--net", sys.executable, "-c", SCENARIO],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "restored"
