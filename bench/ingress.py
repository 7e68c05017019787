"""Ingress benchmark: greenq ingress vs a do-nothing endpoint and a bare async RPUSH endpoint.

All three run under the same uvicorn settings (1 process, uvloop, httptools, no access log) against the
same production-like Redis (AOF, appendfsync always), loaded by wrk on loopback at fixed concurrency.
Servers are measured in interleaved rounds and the median is kept, because this 2-core machine is noisy.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
from dataclasses import dataclass

from bench.common import ROOT, WrkResult, save, start_redis, wrk
from greenq.local.procs import free_port, stop_process, wait_for_port

TOKEN = "bench-token-5d2c8a1f"  # noqa: S105 (a throwaway token for a local benchmark)
BODY = ROOT / "tests" / "samples" / "incomingMessageReceived__textMessage.json"
UVICORN_FLAGS = ["--loop", "uvloop", "--http", "httptools", "--no-access-log", "--log-level", "warning"]


@dataclass(frozen=True)
class Server:
    name: str
    command: list[str]


def servers(port: int) -> list[Server]:
    uvicorn = [sys.executable, "-m", "uvicorn", "--factory", "--port", str(port), *UVICORN_FLAGS]
    greenq = [sys.executable, "-m", "greenq", "ingress", "--port", str(port)]
    return [
        Server("noop", [*uvicorn, "bench.baselines:noop_app"]),
        Server("rpush", [*uvicorn, "bench.baselines:rpush_app"]),
        Server("greenq", greenq),
    ]


def measure(server: Server, port: int, env: dict[str, str], seconds: float, connections: int) -> WrkResult:
    process = subprocess.Popen(server.command, env=env, cwd=ROOT, stderr=subprocess.DEVNULL)
    try:
        wait_for_port("127.0.0.1", port, 30, process)
        url = f"http://127.0.0.1:{port}/green-api/webhook/"
        wrk(url, BODY, TOKEN, 2, connections)  # warm-up
        return wrk(url, BODY, TOKEN, seconds, connections)
    finally:
        stop_process(process)


def main(seconds: float = 10, rounds: int = 3, connections: int = 64) -> dict[str, object]:
    redis = start_redis("always")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("GREENQ_")},
        "BENCH_REDIS_URL": redis.url,
        "GREENQ_REDIS_URL": redis.url,
        "GREENQ_TOKENS": f"bench={TOKEN}",
        "GREENQ_LOG_LEVEL": "WARNING",
        # No workers drain the queue here, so it only grows: the backlog linger (which exists to feed busy
        # workers bigger jobs) would measure a deliberate wait, not the ingress. The e2e bench keeps it.
        "GREENQ_BATCH_BACKLOG_DELAY_MS": "0",
        # Explicit, not the default: the recorded figures (BENCHMARKS.md, "Ingress") are of the RQ batch-job
        # writer, against the bare RPUSH endpoint; the e2e runs measure both designs, each named.
        "GREENQ_ORDERING": "jobs",
    }
    runs: dict[str, list[WrkResult]] = {}
    try:
        for _ in range(rounds):
            port = free_port()
            for server in servers(port):
                runs.setdefault(server.name, []).append(measure(server, port, env, seconds, connections))
    finally:
        redis.stop()
    summary = {name: _median(results) for name, results in runs.items()}
    ratios = {
        "greenq_vs_noop": summary["greenq"]["requests_per_second"] / summary["noop"]["requests_per_second"],
        "greenq_vs_rpush": summary["greenq"]["requests_per_second"] / summary["rpush"]["requests_per_second"],
    }
    result = {
        "seconds": seconds,
        "rounds": rounds,
        "connections": connections,
        "summary": summary,
        "ratios": ratios,
    }
    result["runs"] = {name: [r.__dict__ for r in results] for name, results in runs.items()}
    save("ingress", result)
    return result


def _median(results: list[WrkResult]) -> dict[str, float]:
    return {
        "requests_per_second": statistics.median(r.requests_per_second for r in results),
        "p50_ms": statistics.median(r.p50_ms for r in results),
        "p99_ms": statistics.median(r.p99_ms for r in results),
        "non_2xx": sum(r.non_2xx for r in results),
    }


if __name__ == "__main__":
    print(main(seconds=float(sys.argv[1]) if len(sys.argv) > 1 else 10))
