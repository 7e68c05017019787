"""End-to-end benchmark: wrk -> nginx -> 2 ingress -> Redis (AOF, fsync always) -> 2 workers, sustained.

Every request carries a distinct notification (the samples mix, unique idMessage), so the processed count
is exact: ``lost`` is counted (accepted minus what the stream sink recorded), not assumed. Latency is wrk's
per-request time through nginx, i.e. the ack latency GREEN API would see.
"""

from __future__ import annotations

import io
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, cast

import httpx2 as httpx
import orjson
from redis import Redis

from bench.common import ROOT, SAMPLES, cpu_seconds, peak_rss_mb, save, wrk
from greenq.core import keys
from greenq.core.contract import notification_queue
from greenq.local.procs import free_port
from greenq.local.up import LocalPipeline, UpOptions

LUA = ROOT / "bench" / "e2e.lua"


def body_templates(path: Path) -> None:
    """The samples that carry an idMessage, with the id replaced by wrk's per-request placeholder."""
    bodies = []
    for sample in SAMPLES:
        data = orjson.loads(sample.read_bytes())
        if "idMessage" in data:
            bodies.append(orjson.dumps({**data, "idMessage": "IDMESSAGE"}).decode())
    path.write_text("\n--8<--\n".join(bodies))


def scrape_sum(url: str, prefix: str) -> float:
    text = httpx.get(url, timeout=5).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(prefix))


def processed(redis: Redis) -> int:
    """Final outcomes committed (the event streams are trimmed to their byte budget, so not those)."""
    counts = cast(dict[bytes, bytes], redis.hgetall(keys.OUTCOME_COUNTS))
    return sum(int(value) for value in counts.values())


def topology_pids(pipeline: LocalPipeline) -> dict[str, int]:
    """Every process of the topology by a readable name."""
    found = {f"{child.role}-{index}": child.process.pid for index, child in enumerate(pipeline.children)}
    if pipeline.redis is not None and pipeline.redis.process is not None:
        found["redis"] = pipeline.redis.process.pid
    if pipeline.nginx is not None and pipeline.nginx.process is not None:
        master = pipeline.nginx.process.pid
        found["nginx-master"] = master
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
        found.update({f"nginx-worker-{n}": int(pid) for n, pid in enumerate(children)})
    return found


def main(
    seconds: int = 60,
    connections: int = 32,
    *,
    appendfsync: str = "always",
    ordering: str = "jobs",
    workers: int = 2,
    compare: bool = False,
) -> dict[str, Any]:
    """One run; ``compare`` (or a non-default mode, workers or connections) saves it under its own name."""
    work = Path(tempfile.mkdtemp(prefix="greenq-bench-e2e-"))
    os.environ.update(GREENQ_STREAM_MAXLEN="10000000", GREENQ_LOG_LEVEL="INFO", GREENQ_ORDERING=ordering)
    pipeline = LocalPipeline(
        UpOptions(
            ingress=2,
            workers=workers,
            port=free_port(),
            data_dir=work,
            nginx=True,
            log_dir=work / "logs",
            appendfsync=appendfsync,
        ),
        out=io.StringIO(),
    )
    pipeline.start()
    try:
        assert pipeline.redis is not None
        assert pipeline.token_file is not None
        redis = Redis.from_url(pipeline.redis.url)
        templates = work / "bodies.txt"
        body_templates(templates)
        started = time.monotonic()
        token = pipeline.token_file.read_text().strip()
        result = wrk(pipeline.webhook_url, templates, token, seconds, connections, threads=2, script=LUA)
        load_seconds = time.monotonic() - started
        backlog = notification_queue(redis).count + sum(
            int(redis.xlen(stream)) for stream in cast(list[bytes], redis.keys("greenq:{p*}:stream"))
        )
        accepted = result.requests - result.non_2xx
        # The ingresses' own count also includes requests in flight when wrk stopped: wait for those too.
        server_accepted = sum(
            scrape_sum(f"{child.url}/metrics", 'greenq_ingress_requests_total{outcome="accepted"}')
            for child in pipeline.children
            if child.role == "ingress"
        )
        deadline = time.monotonic() + 300
        while processed(redis) < server_accepted and time.monotonic() < deadline:
            time.sleep(0.2)
        drain_seconds = time.monotonic() - started
        done = processed(redis)
        pids = topology_pids(pipeline)
        rss = {name: peak_rss_mb(pid) for name, pid in pids.items()}
        cpu = {name: round(cpu_seconds(pid), 1) for name, pid in pids.items()}
        batches = [
            scrape_sum(c.url, "greenq_batch_size_count") for c in pipeline.children if c.role == "worker"
        ]
    finally:
        pipeline.stop()
    summary = {
        "appendfsync": appendfsync,
        "ordering": ordering,
        "workers": workers,
        "seconds": seconds,
        "connections": connections,
        "offered_per_second": result.requests / load_seconds,
        "accepted_per_second": accepted / load_seconds,
        "drained_per_second": done / drain_seconds,
        "accepted_by_wrk": accepted,
        "accepted_by_ingress": server_accepted,
        "refused": result.non_2xx,
        "processed": done,
        "lost": server_accepted - done,
        "jobs": sum(batches),
        "mean_batch": done / max(1.0, sum(batches)),
        "backlog_at_end_of_load": backlog,
        "drain_after_load_seconds": drain_seconds - load_seconds,
        "p50_ack_ms": result.p50_ms,
        "p99_ack_ms": result.p99_ms,
        "peak_rss_mb": rss,
        "cpu_seconds": cpu,
        "max_rss_mb": max(rss.values()),
    }
    name = "e2e" if appendfsync == "always" else f"e2e-{appendfsync}"
    if compare or ordering != "jobs" or workers != 2 or connections != 32:
        name = f"{name}-{ordering}-c{connections}-w{workers}"
    save(name, summary)
    return summary


if __name__ == "__main__":
    args = sys.argv[1:]
    print(
        main(
            seconds=int(args[0]) if args else 60,
            connections=int(args[1]) if len(args) > 1 else 32,
            ordering=args[2] if len(args) > 2 else "jobs",
            workers=int(args[3]) if len(args) > 3 else 2,
        )
    )
