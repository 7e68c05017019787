"""Shared benchmark plumbing: a production-like Redis, wrk runs, process stats, result files."""

from __future__ import annotations

import json
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from greenq.local.redis_server import LocalRedis

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
SAMPLES = sorted((ROOT / "tests" / "samples").glob("*.json"))
WRK_SCRIPT = ROOT / "bench" / "post.lua"


@dataclass(frozen=True)
class WrkResult:
    """One wrk run: throughput and latency percentiles (ms)."""

    requests_per_second: float
    p50_ms: float
    p99_ms: float
    requests: int
    non_2xx: int
    #: wrk's own CPU (user + system seconds): the load generator shares the machine with what it measures.
    cpu_seconds: float = 0.0


def start_redis(appendfsync: str = "always") -> LocalRedis:
    """A private redis-server configured like production (AOF, fsync policy, noeviction, password)."""
    return LocalRedis(Path(tempfile.mkdtemp(prefix="greenq-bench-redis-")), appendfsync=appendfsync).start()


def require(binary: str) -> str:
    path = shutil.which(binary) or (f"/usr/sbin/{binary}" if Path(f"/usr/sbin/{binary}").exists() else None)
    if path is None:
        raise SystemExit(f"bench needs {binary} (apt-get install {binary})")
    return path


def wrk(
    url: str,
    body_file: Path,
    token: str,
    seconds: float,
    connections: int,
    *,
    threads: int = 1,
    script: Path = WRK_SCRIPT,
) -> WrkResult:
    """POST ``body_file`` (via the Lua ``script``) to ``url`` for ``seconds`` at fixed concurrency."""
    env = dict(os.environ, BENCH_BODY=str(body_file), BENCH_TOKEN=token)
    duration = f"-d{round(seconds)}s"
    command = [
        require("wrk"),
        f"-t{threads}",
        f"-c{connections}",
        duration,
        "--latency",
        "-s",
        str(script),
        url,
    ]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return WrkResult(
        cpu_seconds=after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime,
        requests_per_second=float(_find(r"Requests/sec:\s+([\d.]+)", out)),
        p50_ms=_latency_ms(_find(r"\n\s+50%\s+(\S+)", out)),
        p99_ms=_latency_ms(_find(r"\n\s+99%\s+(\S+)", out)),
        requests=int(_find(r"(\d+) requests in", out)),
        non_2xx=int(_find(r"Non-2xx or 3xx responses:\s+(\d+)", out, default="0")),
    )


def _find(pattern: str, text: str, default: str | None = None) -> str:
    match = re.search(pattern, text)
    if match is None:
        if default is not None:
            return default
        raise ValueError(f"wrk output has no {pattern!r}:\n{text}")
    return match.group(1)


def _latency_ms(text: str) -> float:
    """wrk prints latencies as e.g. ``812.00us``, ``3.51ms`` or ``1.02s``."""
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if match is None:
        raise ValueError(f"unreadable wrk latency {text!r}")
    return float(match.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[match.group(2)]


def peak_rss_mb(pid: int) -> float:
    """Peak resident set size of a live process (VmHWM), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a live process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine() -> dict[str, Any]:
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
    }


def save(name: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **data}, indent=2, default=_plain) + "\n")
    return path


def _plain(value: object) -> object:
    return asdict(value) if hasattr(value, "__dataclass_fields__") else str(value)  # type: ignore[call-overload]
