"""The README's quick start, as a new user runs it, where none of this machine's services exist.

``scripts/up`` runs in a fresh network namespace (nothing listens on 6379 there), then the two lines it prints
are run as printed: the ``curl`` line (must get 200) and the second-terminal status line (must show the
notification ``handled``). This is the test that would have caught every webhook getting 503 on a machine
without a Redis of its own on localhost.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest

from greenq.core.settings import UP_ENV_FILE
from greenq.local.procs import free_port
from greenq.local.up import LocalPipeline, UpOptions
from tests.support.processes import REPO, clean_env

#: Runs inside ``unshare -n``: start scripts/up, run its printed lines, report as ``KEY=value`` lines.
QUICKSTART = textwrap.dedent(
    r"""
    set -u
    ip link set lo up
    work=$1; port=$2
    scripts/up --port "$port" --data-dir "$work/data" --workers 1 >"$work/up.log" 2>&1 &
    up=$!
    deadline=$((SECONDS + 60))
    while [ $SECONDS -lt $deadline ] && ! grep -q "status:" "$work/up.log"; do
      kill -0 $up 2>/dev/null || break
      sleep 0.1
    done
    curl_line=$(grep -o -E 'curl .*' "$work/up.log" | head -1)
    status_line=$(grep -o -E 'status: .*' "$work/up.log" | head -1 | sed 's/^status: *//')
    echo "CURL=$(eval "$curl_line -s -m 10 -w ' [%{http_code}]'")"
    deadline=$((SECONDS + 30))
    while [ $SECONDS -lt $deadline ]; do
      out=$(bash -c "$status_line --json" 2>&1)
      echo "$out" | grep -q '"handled": 1' && break
      sleep 0.1
    done
    echo "STATUS=$(echo "$out" | tr -d '\n')"
    kill -INT $up
    for _ in $(seq 300); do kill -0 $up 2>/dev/null || break; sleep 0.1; done
    kill -0 $up 2>/dev/null && kill -KILL $up
    echo "LOG=$(tr '\n' '|' <"$work/up.log" | tail -c 2000)"
    """
)


def can_make_network_namespace() -> bool:
    if shutil.which("unshare") is None or os.geteuid() != 0:
        return False
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True, check=False)
    return probe.returncode == 0


def test_quickstart_works_where_no_redis_listens_on_localhost(tmp_path: Path) -> None:
    if not can_make_network_namespace():
        if os.environ.get("CI"):
            pytest.fail("CI must be able to create a network namespace (root and unshare)")
        pytest.skip("needs root and unshare to create a private network namespace")
    script = tmp_path / "quickstart.sh"
    script.write_text(QUICKSTART)
    env = clean_env()
    result = subprocess.run(
        ["unshare", "-n", "bash", str(script), str(tmp_path), str(free_port())],
        cwd=REPO,
        env={**env, "PATH": f"/usr/sbin:{env['PATH']}"},
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    report = dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)

    assert report.get("CURL", "").endswith("[200]"), result.stdout + result.stderr
    status = json.loads(report["STATUS"])
    assert status["outcomes"]["handled"] == 1, report["STATUS"]
    assert status["backlog"]["depth"] == 0
    assert "6379" not in report["LOG"]
    assert not (tmp_path / "data" / "greenq.env").exists(), "greenq up removes its env file on stop"


def test_second_terminal_hint_needs_no_typing_from_the_same_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    data_dir = (tmp_path / UP_ENV_FILE).parent
    data_dir.mkdir()
    pipeline = LocalPipeline(UpOptions(data_dir=data_dir))
    pipeline._write_env_file(data_dir, "redis://:pw@127.0.0.1:7/0")

    hint = pipeline.operator_hint()

    assert "status" in hint
    assert ". " not in hint.split("status:")[1], "no env file to source when run from the same folder"
    assert (tmp_path / UP_ENV_FILE).read_text() == "GREENQ_REDIS_URL=redis://:pw@127.0.0.1:7/0\n"
    assert (tmp_path / UP_ENV_FILE).stat().st_mode & 0o077 == 0, "the URL carries a password"
